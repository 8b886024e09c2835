"""Job specs: the one contract between the API (which validates them) and the workers (which run them). No torch.

Defaults are the toy task on the tiny offline model, so the smallest valid submission is
`{"kind": "train", "method": "frpo"}` and it finishes in well under a minute on a CPU.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

    @model_validator(mode="after")
    def _check(self) -> TrainSpec:
        if self.per_device_train_batch_size % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size ({self.per_device_train_batch_size}) must be a multiple of "
                f"num_generations ({self.num_generations}) so every batch holds whole prompt groups"
            )
        reserved = sorted(RESERVED_TRL_OPTIONS & set(self.trl))
        if reserved:
            raise ValueError(f"trl may not set {reserved}: use the spec's own fields")
        return self

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

SWEEP_AXES = ("lamb", "beta", "seed")


class SweepSpec(BaseModel):
    """A base spec and a grid: one job per point of the product of the axes given."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200)
    base: JobSpec
    grid: dict[Literal["lamb", "beta", "seed"], list[float | int]] = Field(..., min_length=1)
    include_grpo: bool = Field(
        True, description="Also run GRPO once per (β, seed) with the same spec: the baseline differs only in loss."
    )

    @model_validator(mode="after")
    def _check(self) -> SweepSpec:
        for axis, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{axis} is empty: give at least one value or drop the axis")
        if len(self.points()) > 500:
            raise ValueError("the grid has more than 500 points: split the sweep")
        return self

    def points(self) -> list[JobSpec]:
        """One spec per grid point (FRPO at every λ; GRPO once per remaining point if include_grpo)."""
        axes = list(self.grid)
        specs: list[JobSpec] = []
        for values in itertools.product(*(self.grid[a] for a in axes)):
            specs.append(self.base.model_copy(update={"method": "frpo", **dict(zip(axes, values, strict=True))}))
        if self.include_grpo:
            other = [a for a in axes if a != "lamb"]
            for values in itertools.product(*(self.grid[a] for a in other)):
                specs.append(self.base.model_copy(update={"method": "grpo", **dict(zip(other, values, strict=True))}))
        return [JobSpec.model_validate(spec.model_dump()) for spec in specs]


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
