"""RL jobs as data: the GPU translation into the trainer's config, the math prompts with their decontamination record,
and the toy math warm start."""

from __future__ import annotations

from frpo_core.jobs.gpu import GpuOptions, attention_implementation, gpu_config_options
from frpo_core.jobs.rl import RLJob, rl_config, rl_options


def test_without_gpu_options_on_a_cpu_the_config_keeps_trls_defaults_but_checkpointing(tmp_path):
    options = rl_options(RLJob(model_path="m", output_dir=tmp_path))
    assert not {"use_vllm", "bf16", "model_init_kwargs"} & set(options)
    assert options["gradient_checkpointing"] is False  # recomputing activations saves GPU memory, a CPU only pays
    assert rl_config(RLJob(model_path="m", output_dir=tmp_path)).gradient_checkpointing is False
    assert options["use_cpu"] and options["loss_type"] == "frpo" and options["logging_steps"] == 1


def test_vllm_colocate_bf16_and_attention_reach_the_config(tmp_path):
    gpu = GpuOptions(use_vllm=True, vllm_gpu_memory_utilization=0.3, vllm_tensor_parallel_size=2, bf16=True)
    job = RLJob(model_path="m", output_dir=tmp_path, gpu=gpu, options={"gradient_accumulation_steps": 16})
    options = rl_options(job)
    assert options["use_vllm"] and options["vllm_mode"] == "colocate"
    assert options["vllm_gpu_memory_utilization"] == 0.3 and options["vllm_tensor_parallel_size"] == 2
    assert "vllm_server_host" not in options  # colocate: no server to reach
    assert options["bf16"] and options["gradient_checkpointing"] and options["gradient_accumulation_steps"] == 16
    # no CUDA (or no flash-attn) here: "auto" falls back to SDPA; bf16 weights with bf16
    assert options["model_init_kwargs"] == {"attn_implementation": "sdpa", "dtype": "bfloat16"}
    config = rl_config(job)  # TRL's config does not import vLLM; the trainer would
    assert config.use_vllm and config.vllm_mode == "colocate" and config.vllm_gpu_memory_utilization == 0.3
    assert config.bf16 and config.model_init_kwargs["attn_implementation"] == "sdpa"
    assert config.steps_per_generation == 1  # FRPO: whole groups per micro-batch, also with accumulation


def test_vllm_server_mode_and_explicit_options(tmp_path):
    gpu = GpuOptions(use_vllm=True, vllm_mode="server", vllm_server_host="10.0.0.2", vllm_server_port=8001, bf16=False)
    options = gpu_config_options(gpu)
    assert options["vllm_server_host"] == "10.0.0.2" and options["vllm_server_port"] == 8001
    assert "vllm_gpu_memory_utilization" not in options and not options["bf16"]
    assert options["model_init_kwargs"] == {"attn_implementation": "sdpa"}  # fp32 weights: no dtype forced
    job = RLJob(
        model_path="m",
        output_dir=tmp_path,
        gpu=GpuOptions(attn_implementation="eager"),
        trust_remote_code=True,
        options={"model_init_kwargs": {"dtype": "float16"}},
    )
    init = rl_options(job)["model_init_kwargs"]  # the pass-through options win, trust_remote_code is added
    assert init == {"attn_implementation": "eager", "dtype": "float16", "trust_remote_code": True}


def test_attention_auto_needs_flash_attn_a_gpu_and_16_bit():
    assert attention_implementation("flash_attention_2", bf16=True) == "flash_attention_2"
    assert attention_implementation("auto", bf16=False) == "sdpa"
    assert attention_implementation("auto", bf16=True) in ("sdpa", "flash_attention_2")
