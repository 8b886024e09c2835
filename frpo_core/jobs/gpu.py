"""How a training run uses its GPU: what RL and SFT share (:class:`GpuBaseOptions`: the attention kernel, bf16 and
gradient checkpointing, as the authors ran both, docs/method.md §2.3 "Setup") and RL's own vLLM generation
(:class:`GpuOptions`). The number of processes and DeepSpeed are the launcher's business (``accelerate launch``), not
the config's.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class GpuBaseOptions:
    """The attention kernel (``"auto"``: flash_attention_2 when flash-attn is importable, a GPU present and bf16,
    else sdpa), bf16 mixed precision with bf16 weights, and gradient checkpointing."""

    attn_implementation: str = "auto"
    bf16: bool = True
    gradient_checkpointing: bool = True


def attention_implementation(requested: str, bf16: bool) -> str:
    """The attention kernel to load the model with: ``"auto"`` means flash-attn 2 when it is installed, a GPU is
    present and the weights are 16-bit (flash-attn runs in nothing else), otherwise PyTorch's SDPA."""
    if requested != "auto":
        return requested
    flash = bf16 and torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None
    return "flash_attention_2" if flash else "sdpa"


def config_without_gpu() -> dict[str, Any]:
    """The TRL config fields of a job without GPU options: TRL's defaults, except gradient checkpointing when the job
    trains on the CPU. Checkpointing trades a second forward pass for GPU memory; a CPU job has the memory and only
    pays the pass: 9 % of a toy FRPO step on one thread (`python -m benchmarks.trainer_step --checkpointing`)."""
    return {} if torch.cuda.is_available() else {"gradient_checkpointing": False}


def gpu_base_config(gpu: GpuBaseOptions) -> dict[str, Any]:
    """The TRL config fields ``gpu`` stands for (GRPOConfig and SFTConfig alike): precision, checkpointing, and the
    model's loading kwargs (attention kernel; bf16 weights with bf16, as the authors' LoRA runs loaded them)."""
    init_kwargs = {"attn_implementation": attention_implementation(gpu.attn_implementation, gpu.bf16)}
    if gpu.bf16:
        init_kwargs["dtype"] = "bfloat16"
    return {"bf16": gpu.bf16, "gradient_checkpointing": gpu.gradient_checkpointing, "model_init_kwargs": init_kwargs}


@dataclass(frozen=True)
class GpuOptions(GpuBaseOptions):
    """How an RL run uses its GPU(s), as the authors ran theirs (docs/method.md §2.3 "Setup"): the attention kernel,
    bf16 and gradient checkpointing (:class:`GpuBaseOptions`, shared with SFT), and vLLM generation
    (colocated in the training processes, or a `trl vllm-serve` server).

    vLLM samples from its own copy of the weights, so TRL corrects the mismatch with an importance ratio; FRPOTrainer
    applies it to GRPO and FRPO alike (docs/method.md §6.8)."""

    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_gpu_memory_utilization: float = 0.3
    vllm_tensor_parallel_size: int = 1
    vllm_enable_sleep_mode: bool = False
    vllm_server_host: str = "127.0.0.1"
    vllm_server_port: int = 8000


def gpu_config_options(gpu: GpuOptions) -> dict[str, Any]:
    """The GRPOConfig fields ``gpu`` stands for: precision, checkpointing and the model's loading kwargs
    (:func:`gpu_base_config`), and vLLM's."""
    options = {**gpu_base_config(gpu), "use_vllm": gpu.use_vllm}
    if gpu.use_vllm:
        options["vllm_mode"] = gpu.vllm_mode
        if gpu.vllm_mode == "colocate":
            options["vllm_gpu_memory_utilization"] = gpu.vllm_gpu_memory_utilization
            options["vllm_tensor_parallel_size"] = gpu.vllm_tensor_parallel_size
            options["vllm_enable_sleep_mode"] = gpu.vllm_enable_sleep_mode
        else:
            options["vllm_server_host"] = gpu.vllm_server_host
            options["vllm_server_port"] = gpu.vllm_server_port
    return options
