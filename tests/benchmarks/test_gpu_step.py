"""benchmarks/gpu_step.py: its CPU smoke test, the model-FLOP count behind its MFU, and the peak it assumes."""

import pytest

from benchmarks.gpu_step import QWEN2_0_5B, default_peak_tflops, matmul_params_per_layer, training_flops
from frpo_core.tiny import TinyModelConfig


@pytest.mark.slow
def test_the_gpu_step_benchmark_runs_its_cpu_smoke_test_and_refuses_a_missing_gpu():
    """benchmarks.gpu_step trains through RLJob with GPU options (SDPA, checkpointing) on the CPU with --tiny."""
    import subprocess
    import sys

    import torch

    if not torch.cuda.is_available():
        refused = subprocess.run([sys.executable, "-m", "benchmarks.gpu_step"], capture_output=True, text=True)
        assert (
            refused.returncode == 1 and "no CUDA device" in refused.stderr and "--device cpu --tiny" in refused.stderr
        )
    smoke = [sys.executable, "-m", "benchmarks.gpu_step", "--device", "cpu", "--tiny", "--steps", "2", "--rounds", "1"]
    done = subprocess.run([*smoke, "--batch", "16", "--completion-tokens", "8"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("grpo ") for line in lines) and any(line.startswith("frpo ") for line in lines)
    assert lines[-1].startswith("FRPO / GRPO median step time = ")
    # The training forward+backward alone: its own table, with MFU n/a on the CPU (no known peak).
    header = next(i for i, line in enumerate(lines) if line.startswith("Training forward+backward alone"))
    assert "3 × forward" in lines[header] and "MFU n/a" in lines[header]
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 2 : -1]}
    assert set(rows) == {"grpo", "frpo"}
    for seconds, tokens_per_second, tflops, mfu in rows.values():
        assert 0 < float(seconds) < float("inf") and 0 < float(tokens_per_second) < float("inf")
        assert 0 < float(tflops) < float("inf") and mfu == "n/a"


def test_the_flop_counter_counts_the_decoder_layers_matmul_weights_of_the_real_model(tmp_path):
    """Grouped-query attention (k/v narrower than q) and SwiGLU, checked against the Linear weights transformers builds;
    Qwen2's q/k/v biases exist and are left out (not matmuls)."""
    from torch import nn
    from transformers import AutoModelForCausalLM

    from frpo_core.tiny import build_tiny_model

    shape = TinyModelConfig(
        hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2
    )
    model = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "model", shape))
    linears = [module for module in model.model.layers.modules() if isinstance(module, nn.Linear)]
    assert len(linears) == 7 * shape.num_hidden_layers  # q, k, v, o, gate, up, down
    assert sum(linear.weight.numel() for linear in linears) == shape.num_hidden_layers * matmul_params_per_layer(shape)
    biases = sum(linear.bias.numel() for linear in linears if linear.bias is not None)
    assert biases == shape.num_hidden_layers * (6 + 2 * 2) * 8  # (heads + 2 kv heads) × head_dim, per layer
    # Qwen2-0.5B: the Qwen2 report's 0.35B non-embedding parameters (ours leave out norms and biases).
    assert 0.35e9 < QWEN2_0_5B.num_hidden_layers * matmul_params_per_layer(QWEN2_0_5B) < 0.36e9


def test_the_training_flops_of_a_toy_shape_by_hand():
    # d = 8, 2 heads of 4, 1 kv head, MLP 16, 1 layer, V = 10. Per layer q 64 + k 32 + v 32 + o 64 + MLP 3·8·16 = 576.
    shape = TinyModelConfig(
        vocab_size=10,
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    assert matmul_params_per_layer(shape) == 576
    # Sequences of 3 and 1 real tokens, 2 scored completion positions:
    # matmuls 2·576·4 = 4608; causal attention 2·8·(3·4 + 1·2) = 224; LM head 2·8·10·2 = 320; training = 3 × 5152.
    assert training_flops(shape, [3, 1], 2) == 15456
    # Attention grows with each sequence's square, not the batch's: one sequence of 4 costs more than 3 + 1.
    assert training_flops(shape, [4], 2) - training_flops(shape, [3, 1], 2) == 3 * 2 * 8 * (4 * 5 - 14)


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 SXM5 80GB", 989.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA A100 80GB PCIe", 312.0),
        ("NVIDIA H100 NVL", None),
        ("NVIDIA L4", None),
    ],
)
def test_the_mfu_peak_is_read_from_the_device_name_or_left_unknown(name, peak):
    assert default_peak_tflops(name) == peak
