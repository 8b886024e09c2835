"""How a job uses GPUs: processes, DeepSpeed, attention, precision, checkpointing and (RL) vLLM."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from store.specs.base import STRICT


class GpuBase(BaseModel):
    """How a training job uses GPUs, as the authors ran theirs (docs/method.md §2.3 "Setup": `accelerate launch` on 8
    GPUs, DeepSpeed ZeRO-2, bf16, gradient checkpointing, flash-attn 2): what RL and downstream SFT share.

    `num_gpus` > 1 runs the training child under `accelerate launch` with one process per GPU, inside the one worker
    that owns them. Only the `gpu` queue takes flash-attn, DeepSpeed or several GPUs (`check_runnable` refuses them on
    `cpu`, naming the field: :meth:`gpu_only`)."""

    model_config = STRICT

    num_gpus: int = Field(1, ge=1, le=64, description="Training processes, one GPU each (accelerate launch if > 1).")
    distributed: Literal["ddp", "zero2", "zero3"] = Field(
        "ddp",
        description="'ddp' (data parallel when num_gpus > 1), or DeepSpeed 'zero2' / 'zero3' (the authors: ZeRO-2), "
        "which always run under accelerate launch.",
    )
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "eager"] = Field(
        "auto", description="'auto': flash_attention_2 when flash-attn is installed (and bf16), else sdpa."
    )
    bf16: bool = Field(True, description="bf16 mixed precision, and bf16 weights when loading the model.")
    gradient_checkpointing: bool = Field(True, description="Recompute activations in the backward pass.")

    @model_validator(mode="after")
    def _flash_needs_bf16(self) -> GpuBase:
        if self.attn_implementation == "flash_attention_2" and not self.bf16:
            raise ValueError("attn_implementation 'flash_attention_2' needs bf16 (flash-attn runs in 16-bit only)")
        return self

    def gpu_only(self) -> list[str]:
        """The fields set to what only a GPU worker runs (bf16 and checkpointing run on a CPU too)."""
        flags = {
            "attn_implementation": self.attn_implementation == "flash_attention_2",
            "distributed": self.distributed != "ddp",
            "num_gpus": self.num_gpus > 1,
        }
        return [name for name, on in flags.items() if on]


class GpuSpec(GpuBase):
    """An RL job's GPU settings: :class:`GpuBase` plus vLLM generation (the authors: colocate, gpu_mem 0.3). With
    several GPUs FRPO's groups may span ranks (its trainer gathers them, docs/method.md §6.2)."""

    use_vllm: bool = Field(False, description="Generate completions with vLLM (the `gpu` extra).")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate",
        description="'colocate': vLLM inside the training processes; 'server': the operator's `trl vllm-serve` "
        "server (FRPO_VLLM_SERVER_HOST, FRPO_VLLM_SERVER_PORT).",
    )
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="Colocate: vLLM's share of GPU memory.")
    vllm_tensor_parallel_size: int = Field(
        1, ge=1, le=64, description="Colocate: GPUs per vLLM engine (divides num_gpus)."
    )
    vllm_enable_sleep_mode: bool = Field(False, description="Colocate: offload vLLM's weights and cache during steps.")

    @model_validator(mode="after")
    def _tensor_parallel_divides(self) -> GpuSpec:
        if self.use_vllm and self.vllm_mode == "colocate" and self.num_gpus % self.vllm_tensor_parallel_size:
            raise ValueError(
                f"vllm_tensor_parallel_size ({self.vllm_tensor_parallel_size}) must divide num_gpus ({self.num_gpus})"
            )
        return self

    def gpu_only(self) -> list[str]:
        """vLLM first (it needs CUDA whatever the rest says), then the shared settings."""
        return (["use_vllm"] if self.use_vllm else []) + super().gpu_only()
