"""Sweeps: a base spec (train or pipeline) over a grid of λ, β and seeds, and GRPO's budgets."""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, model_validator

from store.specs.base import STRICT, Baseline, Beta, FromPreset, Lamb, LearningRate, Seed, Steps, job_kind, preset_field
from store.specs.pipeline import PipelineSpec
from store.specs.train import TrainSpec

MAX_SWEEP_POINTS = 500
_TOO_MANY = f"more than {MAX_SWEEP_POINTS} points: split the sweep"


def axis_field(description: str | None = None) -> Any:
    """An axis: a list of at least one value and at most MAX_SWEEP_POINTS (a longer one could not fit)."""
    return Field(None, min_length=1, max_length=MAX_SWEEP_POINTS, description=description)


class SweepGrid(BaseModel):
    """The axes a sweep varies; each value obeys the job spec's own limits."""

    model_config = STRICT

    lamb: list[Lamb] | None = axis_field()
    beta: list[Beta] | None = axis_field()
    lamb_beta: list[tuple[Lamb, Beta]] | None = axis_field(
        "(λ, β) pairs instead of separate λ and β axes, e.g. the paper's (store.presets); the GRPO baseline then runs "
        "once per distinct β."
    )
    seed: list[Seed] | None = axis_field()

    @model_validator(mode="after")
    def _check(self) -> SweepGrid:
        if self.lamb_beta is not None and (self.lamb is not None or self.beta is not None):
            raise ValueError("lamb_beta replaces lamb and beta: give either the pairs or the separate axes")
        if not self.axes():
            raise ValueError("give at least one of lamb, beta, lamb_beta, seed")
        if _size(self.axes()) > MAX_SWEEP_POINTS:  # counted from the axes' lengths, before any point is built
            raise ValueError(_TOO_MANY)
        return self

    def axes(self) -> dict[str, list[Any]]:
        return {axis: values for axis, values in self.model_dump().items() if values is not None}

    def frpo_points(self) -> list[dict[str, Any]]:
        """The FRPO runs' field values: the product of the axes (a (λ, β) pair counts as one axis)."""
        return self._product(self.axes())

    def grpo_points(self, budgets: GrpoBudgets | None = None) -> list[dict[str, Any]]:
        """The GRPO baseline's: the product of :meth:`grpo_axes`."""
        return self._product(self.grpo_axes(budgets))

    def size(self, baselines: int, budgets: GrpoBudgets | None = None) -> int:
        """How many runs the sweep makes with this many baseline methods, from the axes' lengths alone (nothing is
        built)."""
        return _size(self.axes()) + baselines * _size(self.grpo_axes(budgets))

    def grpo_axes(self, budgets: GrpoBudgets | None = None) -> dict[str, list[Any]]:
        """The grid's axes without λ (pairs reduced to their distinct β); with `budgets`, their axes replace the
        grid's (a budget's β replaces the grid's β) and multiply the rest."""
        axes = {axis: values for axis, values in self.axes().items() if axis not in ("lamb", "lamb_beta")}
        if self.lamb_beta is not None:
            axes["beta"] = sorted({beta for _, beta in self.lamb_beta})
        return {**axes, **(budgets.axes() if budgets is not None else {})}

    @staticmethod
    def _product(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
        points = []
        for values in itertools.product(*axes.values()):
            point: dict[str, Any] = {}
            for axis, value in zip(axes, values, strict=True):
                point.update(dict(zip(("lamb", "beta"), value, strict=True)) if axis == "lamb_beta" else {axis: value})
            points.append(point)
        return points


def _size(axes: dict[str, list[Any]]) -> int:
    return math.prod(len(values) for values in axes.values())


class GrpoBudgets(BaseModel):
    """Budgets for the GRPO baseline alone, so that its runs trace a frontier of (KL moved, robustness): a run that
    moved further in RL keeps more, and FRPO is more robust only if it lies above that frontier (docs/method.md §7).

    More steps alone may not move GRPO far: with a KL penalty, groups whose answers all get the same reward give no
    signal and the penalty pulls back, so GRPO settles early. β, the learning rate and std-scaled advantages (the
    paper's GRPO; `scale_rewards`) move where it settles. `checkpoints` takes the step budgets along one run instead
    of one run per budget: each step is the same run's policy, so its points differ by the steps alone."""

    model_config = STRICT

    max_steps: list[Steps] | None = axis_field()
    beta: list[Beta] | None = axis_field()
    learning_rate: list[LearningRate] | None = axis_field()
    scale_rewards: list[Literal["none", "group", "batch"]] | None = axis_field(
        "TRL's advantage scaling: 'group' divides each group's centred rewards by their std (the paper's GRPO), "
        "'batch' by the batch's, 'none' keeps them raw (as FRPO's)."
    )
    checkpoints: list[Steps] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Step budgets along one run instead of max_steps: GRPO runs once per remaining point for the "
        "largest step, evaluated at each step (the KL moved there) and, in a pipeline, fine-tuned (and evaluated) "
        "from its checkpoint at each step: one frontier point per (run, step).",
    )

    @model_validator(mode="after")
    def _check(self) -> GrpoBudgets:
        if not self.axes() and self.checkpoints is None:
            raise ValueError("give at least one of max_steps, beta, learning_rate, scale_rewards, checkpoints")
        if self.checkpoints is not None and self.max_steps is not None:
            raise ValueError(
                "checkpoints are step budgets along one run, max_steps one run per budget: give one of them"
            )
        return self

    def axes(self) -> dict[str, list[Any]]:
        """The axes that multiply GRPO's runs (checkpoints do not: they are steps of each run)."""
        return {
            axis: values for axis, values in self.model_dump().items() if values is not None and axis != "checkpoints"
        }


class SweepSpec(FromPreset, preset_kind="sweep"):
    """A base spec and a grid: one job (or one pipeline: train → finetune → evaluate) per grid point."""

    model_config = STRICT

    preset: str | None = preset_field("sweep")
    name: str = Field(..., min_length=1, max_length=200)
    base: Annotated[
        Annotated[TrainSpec, Tag("train")] | Annotated[PipelineSpec, Tag("pipeline")], Discriminator(job_kind)
    ] = Field(..., description="A train spec, or a pipeline whose training stage the grid varies.")
    grid: SweepGrid
    include_grpo: bool = Field(
        True,
        description="Also run the baselines (`baselines`, GRPO by default) once per (β, seed) with the same spec: a "
        "baseline differs only in loss.",
    )
    baselines: list[Baseline] = Field(
        ["grpo"],
        min_length=1,
        max_length=8,
        description="The baseline loss types run beside FRPO (TRL's: grpo, dr_grpo, dapo, bnpo, cispo, sapo, luspo, "
        "vespo), each at every budget of grpo_budgets; the frontier analysis takes one as its reference.",
    )
    grpo_budgets: GrpoBudgets | None = Field(
        None,
        description="Run the GRPO baseline at each of these budgets (steps, β, learning rate) × seeds, each point "
        "followed by the same fine-tuning and evaluation, so that GRPO traces a frontier.",
    )

    @model_validator(mode="after")
    def _budgets_need_grpo(self) -> SweepSpec:
        if self.grpo_budgets is not None and not self.include_grpo:
            raise ValueError("grpo_budgets need include_grpo: they are budgets for the GRPO baseline")
        if len(set(self.baselines)) < len(self.baselines):
            raise ValueError("baselines: each loss type once")
        if self.grid.size(len(self.baselines) if self.include_grpo else 0, self.grpo_budgets) > MAX_SWEEP_POINTS:
            raise ValueError(_TOO_MANY)
        return self

    @model_validator(mode="after")
    def _checkpoints_are_evaluated(self) -> SweepSpec:
        """Each checkpoint's KL moved is the GRPO run's own evaluation at that step, so the run must evaluate there."""
        steps = self.grpo_budgets.checkpoints if self.grpo_budgets is not None else None
        if steps is None:
            return self
        train = self._train().model_copy(update={"max_steps": max(steps)})
        if train.eval is None:
            raise ValueError(
                "grpo_budgets.checkpoints: each point's KL moved is the GRPO run's evaluation at its step: give the "
                "base's training spec an eval"
            )
        unevaluated = [step for step in steps if not train.evaluates_at(step)]
        if unevaluated:
            raise ValueError(
                f"grpo_budgets.checkpoints: steps {unevaluated} are not evaluation steps of the GRPO run (eval.every = "
                f"{train.eval.every}): set the base's eval.every to a divisor of every checkpoint"
            )
        if isinstance(self.base, PipelineSpec) and self.base.evaluate_before:
            raise ValueError("grpo_budgets.checkpoints: evaluate_before evaluates final models only: leave it false")
        return self

    def points(self) -> list[TrainSpec | PipelineSpec]:
        """One spec per grid point (FRPO at every λ; each baseline once per remaining point, or per budget and
        remaining point, if include_grpo). In a pipeline the seed also seeds the fine-tuning stage, so a seed's spread
        covers the whole pipeline. With checkpoints, a baseline's run goes to the largest step and keeps its
        checkpoints; a pipeline fine-tunes from each (`PipelineSpec.finetune_at`)."""
        specs = [self._point("frpo", values) for values in self.grid.frpo_points()]
        if self.include_grpo:
            steps = self.grpo_budgets.checkpoints if self.grpo_budgets is not None else None
            baseline_points = self.grid.grpo_points(self.grpo_budgets)
            specs += [self._point(method, values, steps) for method in self.baselines for values in baseline_points]
        return specs

    def _train(self) -> TrainSpec:
        return self.base.train if isinstance(self.base, PipelineSpec) else self.base

    def _point(
        self, method: str, values: dict[str, Any], checkpoints: list[int] | None = None
    ) -> TrainSpec | PipelineSpec:
        along = {"max_steps": max(checkpoints), "keep_checkpoints": checkpoints} if checkpoints else {}
        point = TrainSpec.model_validate({**self._train().model_dump(), "method": method, **values, **along})
        if not isinstance(self.base, PipelineSpec):
            return point
        finetune = self.base.finetune.model_copy(update={"seed": values["seed"]}) if "seed" in values else None
        stages = {"train": point, "finetune": finetune or self.base.finetune}
        if checkpoints:  # validated again, so that the training run keeps the checkpoints it is fine-tuned from
            return PipelineSpec.model_validate({**self.base.model_dump(), **stages, "finetune_at": checkpoints})
        return self.base.model_copy(update=stages)
