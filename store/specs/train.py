"""RL training jobs: GRPO or FRPO on a model or a finished run's model."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from store.specs.base import (
    MAX_PROMPT_TOKENS,
    MAX_STEPS,
    QUICKSTART_DATASET,
    STRICT,
    TINY_MODEL,
    Beta,
    FromPreset,
    Lamb,
    LearningRate,
    Method,
    Seed,
    Steps,
    Tracker,
    max_prompt_length_field,
    overlong_prompts_field,
    preset_field,
    preset_tags,
    report_to_field,
    source_field,
)
from store.specs.gpu import GpuSpec
from store.specs.safety_eval import EvalSpec
from store.specs.trl import TrlOptions


class TrainSpec(FromPreset, preset_kind="train"):
    """RL training with GRPO or FRPO. Two runs that differ only in `method` differ only in the loss."""

    model_config = STRICT

    kind: Literal["train"] = "train"
    method: Method = Field(
        "frpo",
        description="The policy loss; everything else is shared. 'frpo': the fine-tuning-robust objective (λ, "
        "frpo_*); the others are TRL's GRPO loss types ('grpo', 'dr_grpo', 'dapo', 'bnpo', 'cispo', 'sapo', 'luspo', "
        "'vespo'), each a baseline.",
    )
    preset: str | None = preset_field("train")
    name: str | None = Field(None, max_length=200, description="A label for lists and charts.")
    model: str = source_field(
        TINY_MODEL,
        "'tiny' (built offline), 'toy-warm-start' (the shipped toy safety warm start), a hub id, or a path under a "
        "model root.",
    )
    parent_id: uuid.UUID | None = Field(
        None, description="Start from this finished run's model instead of `model` (e.g. a warm-start SFT run)."
    )
    dataset: str = source_field(
        QUICKSTART_DATASET,
        "Prompts: 'toy' (the quickstart's eight prompts), a labelled prompt set ('toy_safety', a hub id "
        "or a file with prompt + task/ability columns).",
    )
    rewards: list[Literal["safety", "helpfulness", "share_of_e", "math"]] = Field(
        ["share_of_e"],
        min_length=1,
        max_length=4,
        description="'safety' (1 - harmfulness, harmful prompts), 'helpfulness' (harmless prompts), 'share_of_e', "
        "'math' (0.2·one boxed answer + 0.8·correct, on MATH-style or GSM8K problems: 'toy_math', "
        "'competition_math', a hub id or a file).",
    )
    decontaminate: str | None = source_field(
        "auto",
        "Math: remove problems that appear in this reference set (a name such as 'math500', a hub id or "
        "a file with a 'problem' column); 'auto' = MATH500 except for the shipped synthetic sets; null keeps all "
        "(docs/method.md §2.4 item 9, §6.10).",
    )
    math_levels: list[Annotated[int, Field(ge=1, le=5)]] | None = Field(
        [3, 4, 5],
        min_length=1,
        max_length=5,
        description="Math: keep these MATH difficulty levels (the authors: 3-5); null: all.",
    )
    judge: str = source_field("refusal-matcher", "The safety reward's judge (as in eval.judge).")
    helpfulness: str = source_field(
        "answered", "'answered' (offline: 1 unless refused) or a reward model (hub id or path)."
    )
    lamb: Lamb = Field(1.0, description="FRPO's λ (raw reward units); GRPO logs the robust reward at it.")
    beta: Beta = Field(0.0, description="Weight of the k3 KL to the reference model.")
    seed: Seed = 0
    jackknife: bool = True
    baseline: bool = True
    frpo_scale: Literal["authors", "lambda"] = "authors"
    frpo_clip: Literal["authors", "sign_aware"] = "authors"
    scale_rewards: Literal["none", "group", "batch"] = Field(
        "none", description="'none' keeps λ in raw reward units; applies to GRPO and FRPO alike."
    )
    learning_rate: LearningRate = 3e-3
    max_steps: Steps = 40
    num_generations: int = Field(8, ge=2, le=1024)
    per_device_train_batch_size: int = Field(32, ge=1, le=65_536, validate_default=True)  # default too: whole groups
    max_completion_length: int = Field(16, ge=1, le=MAX_PROMPT_TOKENS)
    max_prompt_length: int | None = max_prompt_length_field("RL prompts")
    overlong_prompts: Literal["truncate", "drop"] = overlong_prompts_field()
    save_steps: int = Field(
        10, ge=1, le=MAX_STEPS, description="Checkpoint every this many steps; a resumed job starts there."
    )
    keep_checkpoints: list[Steps] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Also checkpoint at these steps, so that fine-tuning can start from the policy at each of them "
        "(a finetune's parent_step; a pipeline's finetune_at): points along one run.",
    )
    lora: bool = Field(False, description="Train a LoRA adapter (merged into the final model).")
    lora_r: int = Field(64, ge=1, le=4096)
    lora_alpha: int = Field(64, ge=1, le=65_536)
    eval: EvalSpec | None = Field(
        None,
        description="Safety evaluation at step 0, every `eval.every` steps and at the end; its KL is to the model the "
        "run started from (the KL moved in RL).",
    )
    trust_remote_code: bool = False
    queue: Literal["cpu", "gpu"] = "cpu"
    gpu: GpuSpec | None = Field(
        None, description="GPU settings (processes, DeepSpeed, vLLM, attention, bf16); null: the trainer's defaults."
    )
    report_to: list[Tracker] = report_to_field()
    trl: TrlOptions = Field(
        default_factory=TrlOptions,
        description="Further GRPOConfig options (an allow-list; the spec's own fields, GPU settings and options that "
        "reach other hosts, files or the Hub are refused, naming why).",
    )

    @model_validator(mode="after")
    def _rewards_need_tasks(self) -> TrainSpec:
        if self.dataset == QUICKSTART_DATASET and set(self.rewards) & {"safety", "helpfulness", "math"}:
            raise ValueError(
                "rewards 'safety', 'helpfulness' and 'math' need a labelled data set: set dataset to 'toy_safety' or "
                "'toy_math', a hub id or a file (the 'toy' prompts have no task and no answer)"
            )
        if "math" in self.rewards and set(self.rewards) & {"safety", "helpfulness"}:
            raise ValueError("reward 'math' reads math problems, which have no safety task: use it without them")
        return self

    @model_validator(mode="after")
    def _checkpoints_a_stage_can_start_from(self) -> TrainSpec:
        if self.keep_checkpoints is None:
            return self
        if max(self.keep_checkpoints) > self.max_steps:
            raise ValueError(
                f"keep_checkpoints: step {max(self.keep_checkpoints)} is past max_steps ({self.max_steps}): raise "
                "max_steps or drop the step"
            )
        if self.lora:
            raise ValueError(
                "keep_checkpoints: a LoRA run's checkpoints hold its adapter, not a model a fine-tuning run can start "
                "from: set lora false"
            )
        if self.trl.save_total_limit is not None:
            raise ValueError("keep_checkpoints: trl.save_total_limit would delete kept checkpoints: leave it unset")
        return self

    @field_validator("per_device_train_batch_size")
    @classmethod
    def _whole_groups(cls, value: int, info: ValidationInfo) -> int:
        generations = info.data.get("num_generations")
        if generations and value % generations:
            raise ValueError(
                f"must be a multiple of num_generations ({generations}) so every batch holds whole prompt groups"
            )
        return value

    def evaluates_at(self, step: int) -> bool:
        """Whether the in-loop evaluation measures the policy at `step` (step 0, every `eval.every`, the end)."""
        return self.eval is not None and (step % self.eval.every == 0 or step == self.max_steps)

    def tags(self) -> dict[str, Any]:
        """What lists and charts group by."""
        return {
            "method": self.method,
            "lamb": self.lamb if self.method == "frpo" else None,
            "beta": self.beta,
            "seed": self.seed,
            "base_model": self.model if self.parent_id is None else f"run:{self.parent_id}",
            "dataset": self.dataset,
            "learning_rate": self.learning_rate,
            "max_steps": self.max_steps,
            "scale_rewards": self.scale_rewards,
            **preset_tags(self.preset),
        }
