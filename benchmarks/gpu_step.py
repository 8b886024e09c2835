"""GRPO against FRPO on a GPU: seconds per optimiser step, tokens per second and the MFU of the training
forward+backward, side by side, in one run.

    python -m benchmarks.gpu_step [--steps 10] [--rounds 2] [--batch 64] [--completion-tokens 256] [--peak-tflops 989]
    python -m benchmarks.gpu_step --device cpu --tiny --steps 3 --rounds 1      # a smoke test on a laptop

The model is a Qwen2-0.5B-shaped network (24 layers, width 896, 14 query / 2 key-value heads, a 151,936-token
vocabulary) with random weights, built from its config, so nothing is downloaded; it is loaded in bf16 with PyTorch's
SDPA attention, as the service's GPU path loads models (`frpo_core.jobs.gpu.GpuOptions`, docs/method.md §2.3 "Setup"),
and trained through the same `RLJob` → `FRPOTrainer` path as a job. Random weights rarely end a completion early, so
nearly every completion runs to `--completion-tokens`: the timing is of full-length generation plus the update, the
worst case for a given length. Generation is transformers' own (no vLLM), identical for both methods.

Both methods use the same seed, prompts, batch, generation settings and `scale_rewards="none"`, and TRL's "grpo"
loss (sequence-mean aggregation, like FRPO's); rounds alternate the order so machine noise hits both alike, and the
first step of each run is dropped as warm-up. The paper's claim is that FRPO adds no real cost (its extra work is
per-sequence scalars and a groups × members table); the last line prints the ratio of median step times.
Without CUDA it stops with a message, unless asked for `--device cpu` (where `--tiny` swaps in the tiny offline
model, and both run in float32 there, so it finishes in a minute on a laptop).

A second table times the training forward+backward alone (the policy forward in `compute_loss` and
`accelerator.backward`, per micro-step, CUDA-synchronised; generation, scoring and the optimiser are outside it) and
reports its tokens/s and model FLOP utilisation: analytic model FLOPs (:func:`training_flops`, the PaLM / Kaplan
"training = 3 × forward" convention over real, non-pad tokens, no checkpointing recompute) over seconds × the peak.
The peak is `--peak-tflops`, else read from the device name (:func:`default_peak_tflops`: 989 TFLOP/s bf16 dense for
an H100 SXM or H200, 756 for an H100 PCIe, 312 for an A100); otherwise MFU prints as n/a.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging as transformers_logging

from frpo_core.jobs.gpu import GpuOptions
from frpo_core.jobs.rl import RLJob, build_rl_trainer
from frpo_core.tiny import TinyModelConfig, build_tiny_model

QWEN2_0_5B = TinyModelConfig(
    vocab_size=151_936,
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32_768,
)
"""Qwen2-0.5B's shape (its tokenizer is not needed for timing: the tiny one's ids are a subset of the vocabulary)."""


def matmul_params_per_layer(shape: TinyModelConfig) -> int:
    """Weights of one decoder layer's matrix multiplies: the q/k/v/o projections and the SwiGLU MLP (gate, up, down).

    These are the "non-embedding parameters" that cost FLOPs per token in :func:`training_flops`. Grouped-query
    attention: q and o are d × (heads · head_dim), k and v only d × (kv_heads · head_dim). Qwen2's q/k/v biases
    ((heads + 2 · kv_heads) · head_dim per layer, under 0.01 % of the weights at the 0.5B shape) are additions, not
    multiplies, and are left out, as are the RMSNorm scales.
    """
    d, head_dim = shape.hidden_size, shape.hidden_size // shape.num_attention_heads
    q_width, kv_width = shape.num_attention_heads * head_dim, shape.num_key_value_heads * head_dim
    attention = d * q_width + 2 * d * kv_width + q_width * d
    return attention + 3 * d * shape.intermediate_size


def training_flops(shape: TinyModelConfig, sequence_lengths: Sequence[int], scored_positions: int) -> int:
    """Model FLOPs of one training forward+backward over sequences of ``sequence_lengths`` real (non-pad) tokens,
    with the LM head applied at ``scored_positions`` positions.

    The convention of PaLM (Chowdhery et al. 2022, appendix B) and Kaplan et al. (2020, §2.1): a matmul with W weights
    costs 2 · W FLOPs per token forward (a multiply and an add) and twice that backward (gradients with respect to its
    input and to its weights), so training = 3 × forward. The forward of a sequence of n tokens, L layers:

    - decoder matmuls: 2 · L · :func:`matmul_params_per_layer` · n;
    - causal attention, d_attn = heads · head_dim: query i (from 1) meets i keys; its scores QKᵀ cost 2 · d_attn per
      key over all heads and the weighted values AV as much, so 4 · d_attn · (1 + … + n) = 2 · d_attn · n (n + 1) per
      layer, 2 · L · d_attn · n (n + 1) in all (PaLM's 12 · L · H · Q · T per token counts the whole n² square, twice
      this, although its models are causal too);
    - the LM head: 2 · d · V per position whose logits are computed. TRL's fused head scores only the positions whose
      next token is a real completion token, so the caller passes the completion mask's sum.

    Padding, the embedding lookup, norms, softmax and activations are not counted, nor is the forward that gradient
    checkpointing recomputes: MFU counts the model's arithmetic once, whatever the implementation spends.
    """
    d_attn = shape.num_attention_heads * (shape.hidden_size // shape.num_attention_heads)
    layers = shape.num_hidden_layers
    matmuls = 2 * layers * matmul_params_per_layer(shape) * sum(sequence_lengths)
    attention = 2 * layers * d_attn * sum(n * (n + 1) for n in sequence_lengths)
    lm_head = 2 * shape.hidden_size * shape.vocab_size * scored_positions
    return 3 * (matmuls + attention + lm_head)


def default_peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak (TFLOP/s, no sparsity) of a GPU named ``device_name``, or None when unknown.

    An H100 SXM reports itself as "... H100 80GB HBM3": 989; an H200 the same chip at the same clocks: 989; an H100
    PCIe: 756; an A100 (either form): 312. The NVL boards run lower clocks than their SXM siblings, and anything else
    is unknown: an unknown peak prints MFU as n/a rather than a guess (`--peak-tflops` overrides).
    """
    name = device_name.upper()
    if "NVL" in name:
        return None
    if "H100" in name and "PCIE" in name:
        return 756.0
    if ("H100" in name and ("HBM3" in name or "SXM" in name)) or "H200" in name:
        return 989.0
    if "A100" in name:
        return 312.0
    return None


@dataclass(frozen=True)
class MicroStep:
    """One timed training forward+backward: the optimiser step it belongs to, its seconds, real tokens and FLOPs."""

    step: int
    seconds: float
    tokens: int
    flops: int


class FwdBwdTimer:
    """Times each micro-step's training forward+backward on one trainer, apart from generation.

    transformers' `Trainer.training_step` calls `_prepare_inputs` (TRL generates and scores there), then
    `compute_loss` (the policy forward), then `accelerator.backward`; the span from entering the second to leaving the
    third is timed, by wrapping both on the trainer instance, with the device synchronised at either end so queued
    kernels are counted where they run. `compute_loss` runs exactly one model pass: TRL computes old-policy and
    reference log-probs (needed only with several iterations per generation, off-step generation, vLLM or β ≠ 0; none
    here) while scoring, outside the span. Tokens and FLOPs come from the batch's prompt and completion masks.
    """

    def __init__(self, trainer: Any, shape: TinyModelConfig, cuda: bool) -> None:
        self.shape, self.cuda = shape, cuda
        self.steps: list[MicroStep] = []
        self._open: tuple[int, float, int, int] | None = None
        trainer.compute_loss = self._timed_compute_loss(trainer, trainer.compute_loss)
        trainer.accelerator.backward = self._timed_backward(trainer.accelerator.backward)

    def _timed_compute_loss(self, trainer: Any, compute_loss: Callable[..., Any]) -> Callable[..., Any]:
        def timed(model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            self._start(trainer.state.global_step, inputs)
            return compute_loss(model, inputs, *args, **kwargs)

        return timed

    def _timed_backward(self, backward: Callable[..., Any]) -> Callable[..., Any]:
        def timed(loss: torch.Tensor, **kwargs: Any) -> Any:
            result = backward(loss, **kwargs)
            self._stop()
            return result

        return timed

    def _start(self, step: int, inputs: dict[str, Any]) -> None:
        """Count the batch (before the clock starts: reading the masks synchronises anyway), then start the clock."""
        completion_mask = inputs["completion_mask"]
        lengths = (inputs["prompt_mask"].sum(dim=1) + completion_mask.sum(dim=1)).tolist()
        flops = training_flops(self.shape, lengths, int(completion_mask.sum()))
        self._synchronize()
        self._open = (step, time.perf_counter(), sum(lengths), flops)

    def _stop(self) -> None:
        if self._open is None:
            return
        self._synchronize()
        step, start, tokens, flops = self._open
        self.steps.append(MicroStep(step, time.perf_counter() - start, tokens, flops))
        self._open = None

    def _synchronize(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


def run_once(
    model_path: Path, shape: TinyModelConfig, workdir: Path, loss_type: str, args: argparse.Namespace
) -> dict[str, list[float]]:
    """One short training run; per-step seconds (first step dropped), completion tokens and all tokens per step, and
    per micro-step the training forward+backward's seconds, tokens and model FLOPs (first step dropped too)."""
    cuda = args.device == "cuda"
    job = RLJob(
        model_path=model_path,
        output_dir=workdir / loss_type,
        loss_type=loss_type,
        lamb=args.lamb,
        learning_rate=1e-6,
        max_steps=args.steps,
        num_generations=args.generations,
        per_device_train_batch_size=args.batch,
        max_completion_length=args.completion_tokens,
        gpu=GpuOptions(attn_implementation="sdpa", bf16=cuda, gradient_checkpointing=args.gradient_checkpointing),
        options={"use_cpu": not cuda},
    )
    trainer = build_rl_trainer(job)
    timer = FwdBwdTimer(trainer, shape, cuda)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    measured = [micro for micro in timer.steps if micro.step >= 1]  # global_step is 0 throughout the first step
    history = [h for h in trainer.state.log_history if "step_time" in h]
    tokens = [h["num_tokens"] for h in history]
    per_step = [later - earlier for earlier, later in zip(tokens, tokens[1:], strict=False)]
    history = history[1:]
    return {
        "seconds": [h["step_time"] for h in history],
        "completion_tokens": [h["completions/mean_length"] * args.batch for h in history],
        "tokens": per_step,
        "peak_gib": [torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")],
        "train_seconds": [micro.seconds for micro in measured],
        "train_tokens": [micro.tokens for micro in measured],
        "train_flops": [micro.flops for micro in measured],
    }


def peak_of(args: argparse.Namespace) -> tuple[float | None, str]:
    """The peak FLOP/s MFU is taken against (TFLOP/s, or None), and where it came from, for the header."""
    if args.peak_tflops is not None:
        return args.peak_tflops, f"{args.peak_tflops:g} TFLOP/s (--peak-tflops)"
    name = torch.cuda.get_device_name() if args.device == "cuda" else "the CPU"
    peak = default_peak_tflops(name) if args.device == "cuda" else None
    if peak is None:
        return None, f"no known peak for {name} (MFU n/a; pass --peak-tflops)"
    return peak, f"{peak:g} TFLOP/s (bf16 dense peak of {name})"


def print_train_table(results: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    """The training forward+backward alone: median seconds per micro-step, tokens/s, achieved TFLOP/s and MFU."""
    peak, peak_text = peak_of(args)
    print(
        "Training forward+backward alone (compute_loss + backward per micro-step, generation excluded; medians); "
        "model FLOPs = 3 × forward (PaLM app. B / Kaplan et al.), forward = 2 × non-embedding matmul weights per real "
        "token + 2·d·V LM head per scored completion token + 2·L·d_attn·n(n+1) causal attention per n-token sequence, "
        f"no checkpointing recompute; MFU against {peak_text}"
    )
    print(f"{'loss':<6}{'median fwd+bwd s':>18}{'train tok/s':>13}{'TFLOP/s':>10}{'MFU':>8}")
    for method, values in results.items():
        seconds = values["train_seconds"]
        tokens_rate = statistics.median(t / s for t, s in zip(values["train_tokens"], seconds, strict=True))
        tflops = statistics.median(f / s / 1e12 for f, s in zip(values["train_flops"], seconds, strict=True))
        mfu = "n/a" if peak is None else f"{tflops / peak:.1%}"
        print(f"{method:<6}{statistics.median(seconds):>18.4f}{tokens_rate:>13.0f}{tflops:>10.3g}{mfu:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the tiny offline model instead of the 0.5B shape")
    parser.add_argument("--steps", type=int, default=10, help="optimiser steps per run (the first is warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating GRPO/FRPO rounds")
    parser.add_argument("--batch", type=int, default=64, help="completions per step (whole groups)")
    parser.add_argument("--generations", type=int, default=8, help="completions per prompt")
    parser.add_argument("--completion-tokens", type=int, default=256)
    parser.add_argument("--lamb", type=float, default=1.0)
    parser.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false")
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="peak FLOP/s for MFU (default: from the GPU's name, else n/a)"
    )
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(
            "benchmarks.gpu_step: no CUDA device on this machine. Run it on a GPU host, or smoke-test it here with "
            "`python -m benchmarks.gpu_step --device cpu --tiny --steps 3 --rounds 1`."
        )
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step is dropped as warm-up)")
    transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6", category=FutureWarning)

    results: dict[str, dict[str, list[float]]] = {method: {} for method in ("grpo", "frpo")}
    with tempfile.TemporaryDirectory() as tmp:
        shape = TinyModelConfig() if args.tiny else QWEN2_0_5B
        model_path = build_tiny_model(Path(tmp) / "model", shape)
        for round_index in range(args.rounds):
            for method in ("grpo", "frpo") if round_index % 2 == 0 else ("frpo", "grpo"):
                for key, values in run_once(model_path, shape, Path(tmp), method, args).items():
                    results[method].setdefault(key, []).extend(values)

    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    model = ("the tiny offline model" if args.tiny else "Qwen2-0.5B shape") + (
        ", bf16" if args.device == "cuda" else ""
    )
    print(
        f"GRPO vs FRPO step on {device}, torch {torch.__version__}: {model}, SDPA, random weights; {args.batch} "
        f"completions ({args.generations} per prompt) of ≤ {args.completion_tokens} tokens per step, {args.rounds} "
        f"alternating round(s) of {args.steps} steps (first dropped)"
    )
    print(
        f"{'loss':<6}{'median s/step':>15}{'p10':>9}{'p90':>9}{'completion tok/s':>18}{'all tok/s':>11}{'peak GiB':>10}"
    )
    for method, values in results.items():
        seconds = values["seconds"]
        low, high = (
            (statistics.quantiles(seconds, n=10, method="inclusive")[i] for i in (0, -1))
            if len(seconds) > 1
            else (seconds[0],) * 2
        )
        median = statistics.median(seconds)
        completion_rate = statistics.mean(values["completion_tokens"]) / median
        total_rate = statistics.mean(values["tokens"]) / median if values["tokens"] else float("nan")
        peak = max(values["peak_gib"])
        print(
            f"{method:<6}{median:>15.3f}{low:>9.3f}{high:>9.3f}{completion_rate:>18.0f}{total_rate:>11.0f}{peak:>10.1f}"
        )
    print_train_table(results, args)
    ratio = statistics.median(results["frpo"]["seconds"]) / statistics.median(results["grpo"]["seconds"])
    print(f"FRPO / GRPO median step time = {ratio:.3f}")


if __name__ == "__main__":
    main()
