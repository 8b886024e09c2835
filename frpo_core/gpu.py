"""How a training run uses its GPU, in what RL (:class:`frpo_core.rl.GpuOptions`) and SFT (:class:`frpo_core.finetune.
SFTJob`) share: the attention kernel, bf16 and gradient checkpointing, as the authors ran both (method.md §2.3
"Setup"). The number of processes and DeepSpeed are the launcher's business (``accelerate launch``), not the config's.
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


def gpu_base_config(gpu: GpuBaseOptions) -> dict[str, Any]:
    """The TRL config fields ``gpu`` stands for (GRPOConfig and SFTConfig alike): precision, checkpointing, and the
    model's loading kwargs (attention kernel; bf16 weights with bf16, as the authors' LoRA runs loaded them)."""
    init_kwargs = {"attn_implementation": attention_implementation(gpu.attn_implementation, gpu.bf16)}
    if gpu.bf16:
        init_kwargs["dtype"] = "bfloat16"
    return {"bf16": gpu.bf16, "gradient_checkpointing": gpu.gradient_checkpointing, "model_init_kwargs": init_kwargs}
