"""The GRPOConfig options a training spec may pass through (`trl`): an allow-list, typed and bounded.

Options not listed here are refused: the spec's own fields and the `gpu` settings each have one place, and options
that would run code from elsewhere, read server files, reach another host or upload to the Hub are the operator's,
not a spec's. Each refusal names the option and why (:data:`REFUSED_TRL_OPTIONS`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from store.specs.base import MAX_SEED, MAX_STEPS, STRICT

MAX_DATALOADER_WORKERS = 8  # each is a process of the worker's; more only compete with training for its CPUs

_SPEC_FIELDS = (
    "lamb",
    "beta",
    "seed",
    "jackknife",
    "baseline",
    "frpo_scale",
    "frpo_clip",
    "scale_rewards",
    "learning_rate",
    "max_steps",
    "num_generations",
    "per_device_train_batch_size",
    "max_completion_length",
    "max_prompt_length",
    "save_steps",
    "trust_remote_code",
)
_GPU_FIELDS = (
    "bf16",
    "gradient_checkpointing",
    "use_vllm",
    "vllm_mode",
    "vllm_gpu_memory_utilization",
    "vllm_tensor_parallel_size",
    "vllm_enable_sleep_mode",
)
_HUB = "it uploads to the Hugging Face Hub; the service keeps models as run artifacts"
_SERVER = (
    "it points the trainer at another host; a vLLM server is the operator's setting "
    "(FRPO_VLLM_SERVER_HOST, FRPO_VLLM_SERVER_PORT), used with gpu.vllm_mode 'server'"
)
_WORKER = "the worker sets it for every run"

REFUSED_TRL_OPTIONS: dict[str, str] = {
    **{name: f"set the spec's own field {name!r}" for name in _SPEC_FIELDS},
    **{name: f"set gpu.{name} (one place for each GPU setting)" for name in _GPU_FIELDS},
    "loss_type": "set the spec's 'method' ('frpo' or one of TRL's loss types, e.g. 'grpo', 'dr_grpo')",
    "deepspeed": "set gpu.distributed ('zero2' or 'zero3'); a DeepSpeed config file would be read from the server",
    "model_init_kwargs": "they go to from_pretrained, where they can run remote code or load other files; use "
    "gpu.attn_implementation and gpu.bf16",
    "output_dir": _WORKER,
    "save_strategy": _WORKER,
    "report_to": "set the spec's own field 'report_to' (the trackers; the store always gets everything)",
    "use_cpu": f"{_WORKER} (set queue instead)",
    "resume_from_checkpoint": f"{_WORKER} (a requeued job resumes from its last checkpoint)",
    **dict.fromkeys(
        (
            "push_to_hub",
            "hub_model_id",
            "hub_token",
            "hub_strategy",
            "hub_private_repo",
            "hub_always_push",
            "hub_revision",
            "log_completions_hub_repo",
        ),
        _HUB,
    ),
    **dict.fromkeys(("vllm_server_base_url", "vllm_server_host", "vllm_server_port", "vllm_group_port"), _SERVER),
}
"""GRPOConfig options a spec may not pass through, and why (the error says so, naming the option)."""

SchedulerType = Literal[
    "linear",
    "cosine",
    "cosine_with_restarts",
    "cosine_with_min_lr",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "warmup_stable_decay",
]


class TrlOptions(BaseModel):
    """Further GRPOConfig options a researcher tunes; unset (null) options keep the trainer's defaults."""

    model_config = STRICT

    # optimiser and learning-rate schedule
    lr_scheduler_type: SchedulerType | None = None
    lr_scheduler_kwargs: dict[Annotated[str, Field(max_length=64)], Annotated[float, Field(ge=-1e6, le=1e6)]] | None = (
        Field(None, max_length=8, description="Numeric arguments of the schedule, e.g. {'min_lr_rate': 0.1}.")
    )
    warmup_steps: float | None = Field(
        None, ge=0, le=MAX_STEPS, description="Warm-up steps; a value below 1 is a ratio of max_steps."
    )
    weight_decay: float | None = Field(None, ge=0, le=10)
    optim: Literal["adamw_torch", "adamw_torch_fused", "adafactor", "sgd"] | None = None
    adam_beta1: float | None = Field(None, ge=0, lt=1)
    adam_beta2: float | None = Field(None, ge=0, lt=1)
    adam_epsilon: float | None = Field(None, gt=0, le=1)
    gradient_accumulation_steps: int | None = Field(None, ge=1, le=1024)
    max_grad_norm: float | None = Field(None, ge=0, le=1e4, description="Gradient clipping; 0 turns it off.")
    # generation
    temperature: float | None = Field(None, gt=0, le=10)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0, le=1_000_000, description="0: no top-k filtering.")
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0, le=10)
    generation_batch_size: int | None = Field(None, ge=1, le=65_536)
    steps_per_generation: int | None = Field(None, ge=1, le=1024)
    shuffle_dataset: bool | None = None
    # the GRPO objective (FRPO keeps its own λ, baseline and clipping in the spec's fields)
    num_iterations: int | None = Field(None, ge=1, le=64, description="Policy updates per generation (μ).")
    epsilon: float | None = Field(None, gt=0, le=10, description="The ratio's clipping range.")
    epsilon_high: float | None = Field(None, gt=0, le=10)
    delta: float | None = Field(None, gt=0, le=1000, description="Two-sided clipping's upper bound on the ratio.")
    importance_sampling_level: Literal["token", "sequence"] | None = None
    mask_truncated_completions: bool | None = None
    top_entropy_quantile: float | None = Field(None, ge=0, le=1)
    reward_weights: list[Annotated[float, Field(ge=-1000, le=1000)]] | None = Field(
        None, min_length=1, max_length=8, description="One weight per reward, in the order of `rewards`."
    )
    sync_ref_model: bool | None = None
    ref_model_mixup_alpha: float | None = Field(None, ge=0, le=1)
    ref_model_sync_steps: int | None = Field(None, ge=1, le=MAX_STEPS)
    disable_dropout: bool | None = None
    # logging, checkpoints, data loading
    logging_steps: float | None = Field(None, gt=0, le=MAX_STEPS, description="Below 1: a ratio of max_steps.")
    logging_first_step: bool | None = None
    log_completions: bool | None = None
    num_completions_to_print: int | None = Field(None, ge=0, le=1000)
    save_total_limit: int | None = Field(None, ge=1, le=1000)
    dataloader_num_workers: int | None = Field(None, ge=0, le=MAX_DATALOADER_WORKERS)
    data_seed: int | None = Field(None, ge=0, le=MAX_SEED)

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, value: Any) -> Any:
        if isinstance(value, dict):
            refused = [name for name in value if name in REFUSED_TRL_OPTIONS]
            if refused:
                raise ValueError("; ".join(f"may not set {name!r}: {REFUSED_TRL_OPTIONS[name]}" for name in refused))
        return value

    @model_serializer(mode="wrap")
    def _set_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Only the options given: a stored spec (and the trainer's config) leaves the others to TRL's defaults."""
        return {name: value for name, value in handler(self).items() if value is not None}
