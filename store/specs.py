"""Job specs: the one contract between the API (which validates them) and the workers (which run them). No torch.

Defaults are the toy task on the tiny offline model, so the smallest valid submission is
`{"kind": "train", "method": "frpo"}` and it finishes in well under a minute on a CPU.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

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


JobSpec = TrainSpec

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
    base: JobSpec
    grid: SweepGrid
    include_grpo: bool = Field(
        True, description="Also run GRPO once per (β, seed) with the same spec: the baseline differs only in loss."
    )

    def points(self) -> list[JobSpec]:
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

    def _point(self, method: str, values: dict[str, Any]) -> JobSpec:
        return JobSpec.model_validate({**self.base.model_dump(), "method": method, **values})


def check_runnable(spec: JobSpec, settings: Settings) -> None:
    """What the shape cannot say: paths confined to the model roots, trust_remote_code only if the server allows."""
    if spec.trust_remote_code and not settings.allow_trust_remote_code:
        raise SpecError("trust_remote_code", "this server does not allow it (FRPO_ALLOW_TRUST_REMOTE_CODE=false)")
    if spec.model == TINY_MODEL:
        return
    path = Path(spec.model).expanduser()
    if HUB_ID.match(spec.model) and not path.exists():
        return  # a hub id: loaded by name (the worker may still find no hub access)
    path = path.resolve()
    if not any(path.is_relative_to(root) for root in settings.model_roots):
        roots = ", ".join(str(r) for r in settings.model_roots)
        raise SpecError("model", f"{spec.model!r} is neither 'tiny', a hub id, nor a path under a model root ({roots})")
