"""Job specs: the one contract between the API (which validates them) and the workers (which run them). No torch.

Defaults are the toy task on the tiny offline model, so the smallest valid submission is
`{"kind": "train", "method": "frpo"}` and it finishes in well under a minute on a CPU.
"""

from __future__ import annotations

import itertools
import math
import re
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from store.settings import Settings

TINY_MODEL = "tiny"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# GRPOConfig options a spec may not override through `trl`: they are the spec's own fields or the worker's business.
RESERVED_TRL_OPTIONS = frozenset(
    {
        "output_dir",
        "loss_type",
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
        "save_steps",
        "save_strategy",
        "report_to",
        "use_cpu",
        "resume_from_checkpoint",
    }
)


class SpecError(ValueError):
    """A spec that validates as a shape but cannot run here; `field` names what to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TrainSpec(BaseModel):
    """RL training with GRPO or FRPO. Two runs that differ only in `method` differ only in the loss."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["train"] = "train"
    method: Literal["grpo", "frpo"] = Field("frpo", description="The policy loss; everything else is shared.")
    name: str | None = Field(None, max_length=200, description="A label for lists and charts.")
    model: str = Field(TINY_MODEL, description="'tiny' (built offline), a hub id, or a path under a model root.")
    dataset: Literal["toy"] = Field("toy", description="Prompt set; 'toy' is the shipped eight-prompt toy task.")
    rewards: list[Literal["share_of_e"]] = Field(["share_of_e"], min_length=1, description="Named reward functions.")
    lamb: float = Field(1.0, gt=0, description="FRPO's λ (raw reward units); GRPO logs the robust reward at it.")
    beta: float = Field(0.0, ge=0, description="Weight of the k3 KL to the reference model.")
    seed: int = Field(0, ge=0)
    jackknife: bool = True
    baseline: bool = True
    frpo_scale: Literal["authors", "lambda"] = "authors"
    frpo_clip: Literal["authors", "sign_aware"] = "authors"
    scale_rewards: Literal["none", "group", "batch"] = Field(
        "none", description="'none' keeps λ in raw reward units; applies to GRPO and FRPO alike."
    )
    learning_rate: float = Field(3e-3, gt=0)
    max_steps: int = Field(40, ge=1, le=1_000_000)
    num_generations: int = Field(8, ge=2)
    per_device_train_batch_size: int = Field(32, ge=1)
    max_completion_length: int = Field(16, ge=1)
    save_steps: int = Field(10, ge=1, description="Checkpoint every this many steps; a resumed job starts there.")
    trust_remote_code: bool = False
    queue: Literal["cpu", "gpu"] = "cpu"
    trl: dict[str, Any] = Field(default_factory=dict, description="Further GRPOConfig options, passed through.")

    @field_validator("per_device_train_batch_size")
    @classmethod
    def _whole_groups(cls, value: int, info: ValidationInfo) -> int:
        generations = info.data.get("num_generations")
        if generations and value % generations:
            raise ValueError(
                f"must be a multiple of num_generations ({generations}) so every batch holds whole prompt groups"
            )
        return value

    @field_validator("trl")
    @classmethod
    def _not_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        reserved = sorted(RESERVED_TRL_OPTIONS & set(value))
        if reserved:
            raise ValueError(f"may not set {reserved}: use the spec's own fields")
        return value

    def tags(self) -> dict[str, Any]:
        """What lists and charts group by."""
        return {
            "method": self.method,
            "lamb": self.lamb if self.method == "frpo" else None,
            "beta": self.beta,
            "seed": self.seed,
            "base_model": self.model,
            "dataset": self.dataset,
        }


class EvalSpec(BaseModel):
    """The safety evaluation: fixed harmful and harmless prompt subsets (drawn once, by `seed`), judged for refusal,
    plus the KL to the model the fine-tuning started from (method.md §3, §6.10)."""

    model_config = ConfigDict(extra="forbid")

    prompts: str = Field("toy_safety", description="Prompt set with a task label: a shipped name, hub id or file.")
    n_harmful: int = Field(32, ge=1, le=10_000)
    n_harmless: int = Field(32, ge=1, le=10_000)
    seed: int = Field(0, ge=0, description="Seeds the subsets once; every evaluation of a run uses the same prompts.")
    judge: str = Field("refusal-matcher", description="'refusal-matcher' (offline), 'hf-classifier:<path>', …")
    max_new_tokens: int = Field(48, ge=1, le=4096)
    every: int = Field(10, ge=1, description="In fine-tuning, evaluate at step 0 and every this many steps.")


class FinetuneStage(BaseModel):
    """Downstream SFT settings: of a parent run's final model (whose policy is the reference for the KL)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    mode: Literal["sft"] = "sft"
    dataset: str = Field("benign_sft", description="SFT data: a shipped name, a hub id or a local file.")
    learning_rate: float = Field(5e-4, gt=0)
    max_steps: int = Field(30, ge=1, le=1_000_000)
    per_device_train_batch_size: int = Field(8, ge=1)
    lora: bool = False
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    max_length: int = Field(256, ge=8)
    seed: int = Field(0, ge=0)
    save_steps: int = Field(10, ge=1)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    queue: Literal["cpu", "gpu"] = "cpu"

    def tags(self) -> dict[str, Any]:
        return {"stage": "finetune", "downstream_dataset": self.dataset, "finetune_seed": self.seed}


class FinetuneSpec(FinetuneStage):
    """Downstream SFT of a finished run's model."""

    kind: Literal["finetune"] = "finetune"
    parent_id: uuid.UUID = Field(..., description="The run whose final model is fine-tuned; it must have succeeded.")


class EvaluateSpec(BaseModel):
    """The safety evaluation, once, on a finished run's model (KL against that run's parent, if it has one)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["evaluate"] = "evaluate"
    run_id: uuid.UUID = Field(..., description="The run whose final model is evaluated; it must have succeeded.")
    name: str | None = Field(None, max_length=200)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    queue: Literal["cpu", "gpu"] = "cpu"

    def tags(self) -> dict[str, Any]:
        return {"stage": "evaluate"}


def _kind(value: Any) -> str:
    """A body without "kind" is a training job, so `{"method": "frpo"}` alone is a valid submission."""
    return value.get("kind", "train") if isinstance(value, dict) else getattr(value, "kind", "train")


class PipelineSpec(BaseModel):
    """Train → fine-tune → evaluate as one submission: three linked runs, each started when the one before succeeds
    (a failure or cancellation cancels the stages after it)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pipeline"] = "pipeline"
    train: TrainSpec = Field(default_factory=TrainSpec)
    finetune: FinetuneStage = Field(default_factory=FinetuneStage)
    evaluate: bool = Field(True, description="Also evaluate the fine-tuned model once it is done.")

    def finetune_spec(self, train_id: uuid.UUID) -> FinetuneSpec:
        """The fine-tuning stage's spec, once the training run has an id."""
        return FinetuneSpec(parent_id=train_id, **self.finetune.model_dump())

    def evaluate_spec(self, finetune_id: uuid.UUID) -> EvaluateSpec:
        """The evaluation stage's spec, once the fine-tuning run has an id."""
        return EvaluateSpec(run_id=finetune_id, eval=self.finetune.eval, queue=self.finetune.queue)


JobSpec = Annotated[
    Annotated[TrainSpec, Tag("train")]
    | Annotated[FinetuneSpec, Tag("finetune")]
    | Annotated[EvaluateSpec, Tag("evaluate")]
    | Annotated[PipelineSpec, Tag("pipeline")],
    Discriminator(_kind),
]
JOB_SPEC = TypeAdapter(JobSpec)
JOB_KINDS: dict[str, type[BaseModel]] = {
    "train": TrainSpec,
    "finetune": FinetuneSpec,
    "evaluate": EvaluateSpec,
    "pipeline": PipelineSpec,
}

MAX_SWEEP_POINTS = 500


class SweepGrid(BaseModel):
    """The axes a sweep varies; each value obeys the job spec's own limits."""

    model_config = ConfigDict(extra="forbid")

    lamb: list[Annotated[float, Field(gt=0)]] | None = Field(None, min_length=1)
    beta: list[Annotated[float, Field(ge=0)]] | None = Field(None, min_length=1)
    seed: list[Annotated[int, Field(ge=0)]] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _check(self) -> SweepGrid:
        axes = self.axes()
        if not axes:
            raise ValueError("give at least one of lamb, beta, seed")
        if math.prod(len(values) for values in axes.values()) > MAX_SWEEP_POINTS:
            raise ValueError(f"more than {MAX_SWEEP_POINTS} points: split the sweep")
        return self

    def axes(self) -> dict[str, list[float | int]]:
        return {axis: values for axis, values in self.model_dump().items() if values is not None}


class SweepSpec(BaseModel):
    """A base spec and a grid: one job per point of the product of the axes given."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200)
    base: TrainSpec
    grid: SweepGrid
    include_grpo: bool = Field(
        True, description="Also run GRPO once per (β, seed) with the same spec: the baseline differs only in loss."
    )

    def points(self) -> list[TrainSpec]:
        """One spec per grid point (FRPO at every λ; GRPO once per remaining point if include_grpo)."""
        axes = self.grid.axes()
        specs = [
            self._point("frpo", dict(zip(axes, values, strict=True))) for values in itertools.product(*axes.values())
        ]
        if self.include_grpo:
            other = {axis: values for axis, values in axes.items() if axis != "lamb"}
            specs += [
                self._point("grpo", dict(zip(other, values, strict=True)))
                for values in itertools.product(*other.values())
            ]
        return specs

    def _point(self, method: str, values: dict[str, Any]) -> TrainSpec:
        return TrainSpec.model_validate({**self.base.model_dump(), "method": method, **values})


def check_runnable(spec: TrainSpec | FinetuneSpec | EvaluateSpec | PipelineSpec, settings: Settings) -> None:
    """What the shape cannot say: local paths (models, data, judge models) confined to the model roots, and
    trust_remote_code only if the server allows it. (Whether a parent run exists and has finished is the store's to
    say: `store.queries.check_lineage`.)"""
    if isinstance(spec, PipelineSpec):
        check_runnable(spec.train, settings)
        spec = spec.finetune
    if isinstance(spec, TrainSpec):
        if spec.trust_remote_code and not settings.allow_trust_remote_code:
            raise SpecError("trust_remote_code", "this server does not allow it (FRPO_ALLOW_TRUST_REMOTE_CODE=false)")
        _check_source("model", spec.model, settings)
        return
    if isinstance(spec, FinetuneStage):
        _check_source("dataset", spec.dataset, settings)
    _check_source("eval.prompts", spec.eval.prompts, settings)
    _, _, judge_path = spec.eval.judge.partition(":")
    if judge_path:
        _check_source("eval.judge", judge_path, settings, hub_ok=False)


def _check_source(field: str, value: str, settings: Settings, hub_ok: bool = True) -> None:
    """A shipped name (no slash), a hub id (owner/name, not an existing path), or a path under a model root."""
    path = Path(value).expanduser()
    if "/" not in value and not path.exists():
        return  # a name: 'tiny', a shipped data set; unknown names fail when the job starts, naming the choices
    if hub_ok and HUB_ID.match(value.split(":", 1)[0]) and not path.exists():
        return  # a hub id: loaded by name (the worker may still find no hub access)
    if not any(path.resolve().is_relative_to(root) for root in settings.model_roots):
        roots = ", ".join(str(r) for r in settings.model_roots)
        raise SpecError(field, f"{value!r} is neither a name, a hub id, nor a path under a model root ({roots})")
