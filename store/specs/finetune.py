"""Downstream fine-tuning jobs (SFT or RL) of a finished run, or SFT of a base model."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field, model_validator

from store.specs.base import (
    MAX_EPOCHS,
    MAX_PROMPT_TOKENS,
    MAX_SEED,
    MAX_STEPS,
    STREAMED_DATASETS,
    STRICT,
    FromPreset,
    Steps,
    Tracker,
    max_prompt_length_field,
    overlong_prompts_field,
    preset_field,
    preset_tags,
    report_to_field,
    source_field,
)
from store.specs.gpu import GpuBase
from store.specs.safety_eval import EvalSpec
from store.specs.sft_options import SftOptions
from store.specs.trl import SchedulerType


class FinetuneStage(FromPreset, preset_kind="finetune"):
    """Downstream SFT settings: of a parent run's final model (whose policy is the reference for the KL)."""

    model_config = STRICT

    preset: str | None = preset_field("finetune")
    name: str | None = Field(None, max_length=200)
    mode: Literal["sft", "rl"] = Field(
        "sft", description="'sft' (SFTTrainer on `dataset`) or 'rl' (GRPO on `dataset`'s prompts with `rewards`)."
    )
    dataset: str = source_field(
        "benign_sft", "SFT data, or for 'rl' the prompts: a shipped name, a hub id or a local file."
    )
    dataset_limit: int | None = Field(None, ge=1, le=100_000_000, description="Use only the first this many examples.")
    learning_rate: float = Field(5e-4, gt=0, le=1)
    lr_scheduler_type: SchedulerType = "constant"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=10)
    max_steps: int | None = Field(
        30, ge=1, le=MAX_STEPS, description="Optimiser steps; null with `epochs`. Exactly one of the two is given."
    )
    epochs: float | None = Field(
        None,
        gt=0,
        le=MAX_EPOCHS,
        description="Mode 'sft', instead of max_steps: passes over the data, turned into steps when the job starts "
        "(ceil(epochs × batches per epoch / gradient_accumulation_steps), batches of the data left after "
        "dataset_limit and the held-out split), recorded as the run's `finetune_steps` tag.",
    )
    per_device_train_batch_size: int = Field(8, ge=1, le=65_536)
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    max_grad_norm: float = Field(1.0, gt=0, le=1e4, description="Gradient clipping (the authors' code SFT: 0.3).")
    lora: bool = False
    lora_r: int = Field(16, ge=1, le=4096)
    lora_alpha: int = Field(32, ge=1, le=65_536)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    max_length: int = Field(256, ge=8, le=MAX_PROMPT_TOKENS)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    save_steps: int = Field(10, ge=1, le=MAX_STEPS)
    rewards: list[Literal["math", "helpfulness", "share_of_e"]] = Field(
        ["math"],
        min_length=1,
        max_length=3,
        description="Downstream RL's rewards; 'math' = boxed-answer / GSM8K correctness.",
    )
    num_generations: int = Field(8, ge=2, le=1024, description="Downstream RL: completions per prompt.")
    max_completion_length: int = Field(
        64, ge=1, le=MAX_PROMPT_TOKENS, description="Downstream RL: tokens per completion."
    )
    max_prompt_length: int | None = max_prompt_length_field("Downstream RL: prompts")
    overlong_prompts: Literal["truncate", "drop"] = overlong_prompts_field()
    masking: Literal["auto", "assistant", "completion"] = Field(
        "auto",
        description="SFT: how the loss stays on the answer. 'assistant': the chat template's {% generation %} "
        "markers (assistant_only_loss); 'completion': the conversation up to the answer as the prompt, the answer as "
        "the completion (completion_only_loss; any chat template); 'auto': 'assistant' where the template has the "
        "markers, else 'completion'. The masking used is recorded as an event on the run.",
    )
    beta: float = Field(0.0, ge=0, le=1e6, description="Downstream RL: weight of the KL to the model it starts from.")
    eval: EvalSpec | None = Field(
        default_factory=EvalSpec, description="In-loop safety evaluation (null: none, e.g. for a warm start)."
    )
    report_to: list[Tracker] = report_to_field()
    sft: SftOptions = Field(
        default_factory=SftOptions,
        description="Further SFTConfig options for mode 'sft' (an allow-list: packing, optimiser, NEFTune, the "
        "loss type, …; the spec's own fields and options that read files or run code are refused).",
    )
    queue: Literal["cpu", "gpu"] = "cpu"
    gpu: GpuBase | None = Field(
        None,
        description="GPU settings (processes, DeepSpeed, attention, bf16, gradient checkpointing); null: the "
        "trainer's defaults, fp32 weights.",
    )

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> FinetuneStage:
        if self.epochs is not None and "max_steps" not in self.model_fields_set:
            self.max_steps = None  # the default step count gives way to the epochs given
        if (self.max_steps is None) == (self.epochs is None):
            given = "both" if self.epochs is not None else "neither"
            raise ValueError(f"give exactly one of max_steps and epochs ({given} given): max_steps=N or epochs=E")
        if self.epochs is not None and self.mode == "rl":
            raise ValueError("epochs: downstream RL (mode 'rl') counts in steps; give max_steps instead")
        return self

    @model_validator(mode="after")
    def _sft_options_are_for_sft(self) -> FinetuneStage:
        if self.mode == "rl" and self.sft.model_dump():
            raise ValueError("sft: SFTConfig options apply to mode 'sft'; downstream RL takes its own fields")
        return self

    @model_validator(mode="after")
    def _streamed_sets_need_a_limit(self) -> FinetuneStage:
        if self.dataset in STREAMED_DATASETS and self.dataset_limit is None:
            raise ValueError(
                f"dataset {self.dataset!r} is streamed (millions of rows): give dataset_limit (the authors: 50000)"
            )
        return self

    @model_validator(mode="after")
    def _rl_groups(self) -> FinetuneStage:
        if self.mode == "rl" and self.per_device_train_batch_size % self.num_generations:
            raise ValueError(
                f"mode 'rl': per_device_train_batch_size ({self.per_device_train_batch_size}) must be a multiple of "
                f"num_generations ({self.num_generations}) so every batch holds whole prompt groups"
            )
        return self

    def tags(self) -> dict[str, Any]:
        return {
            "stage": "finetune",
            "finetune_mode": self.mode,
            "downstream_dataset": self.dataset,
            "finetune_seed": self.seed,
            **{f"finetune_{key}": value for key, value in preset_tags(self.preset).items()},
        }


class FinetuneSpec(FinetuneStage):
    """Downstream SFT of a finished run's model (`parent_id`), or SFT of a base model (`model`, e.g. a warm start)."""

    kind: Literal["finetune"] = "finetune"
    parent_id: uuid.UUID | None = Field(
        None, description="The run whose final model is fine-tuned; it must have succeeded."
    )
    parent_step: Steps | None = Field(
        None,
        description="Start from the parent run's checkpoint at this step (one it kept: keep_checkpoints) instead of "
        "its final model.",
    )
    model: str | None = source_field(
        None, "Instead of parent_id: 'tiny', 'toy-warm-start', a hub id or a path under a model root."
    )

    @model_validator(mode="after")
    def _one_source(self) -> FinetuneSpec:
        if (self.parent_id is None) == (self.model is None):
            raise ValueError("give exactly one of parent_id (a finished run) and model (a base model)")
        if self.parent_step is not None and self.parent_id is None:
            raise ValueError("parent_step names a checkpoint of the parent run: give parent_id too")
        return self

    def tags(self) -> dict[str, Any]:
        return {
            **super().tags(),
            **({"base_model": self.model} if self.model is not None else {}),
            **({"parent_step": self.parent_step} if self.parent_step is not None else {}),
        }
