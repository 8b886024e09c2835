"""Pipelines (train → fine-tune → evaluate as one submission) and the union of every job kind."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, TypeAdapter, model_validator

from store.specs.base import STRICT, FromPreset, Steps, job_kind, preset_field, preset_tags
from store.specs.evaluate import EvaluateSpec, EvaluateStage
from store.specs.finetune import FinetuneSpec, FinetuneStage
from store.specs.safety_eval import EvalSpec
from store.specs.train import TrainSpec


class PipelineSpec(FromPreset, preset_kind="pipeline"):
    """Train → fine-tune → evaluate as one submission: linked runs, each started when the one before succeeds (a
    failure or cancellation cancels the stages after it). With `evaluate_before`, the trained model is evaluated
    too, by the same evaluation, as a second child of the training run: before and after fine-tuning, alike. With
    `finetune_at`, the fine-tuning (and its evaluation) runs once per step, each from the training run's checkpoint
    at that step: points along one run."""

    model_config = STRICT

    kind: Literal["pipeline"] = "pipeline"
    preset: str | None = preset_field("pipeline")
    train: TrainSpec = Field(default_factory=TrainSpec)
    finetune: FinetuneStage = Field(default_factory=FinetuneStage)
    evaluate: bool = Field(True, description="Also evaluate the fine-tuned model once it is done.")
    evaluate_before: bool = Field(
        False, description="Also evaluate the trained model before fine-tuning (same evaluation), for before/after."
    )
    finetune_at: list[Steps] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Fine-tune (and evaluate) from the training run's policy at each of these steps instead of its "
        "final model: one fine-tuning per step, each from the checkpoint the training run keeps there "
        "(train.keep_checkpoints, filled in), whose in-loop evaluation at that step is the KL it had moved.",
    )
    evaluation: EvaluateStage | None = Field(
        None,
        description="What the evaluation stage(s) measure (benchmarks, safety, generation); null: the safety "
        "evaluation with the fine-tuning stage's eval settings.",
    )

    @model_validator(mode="after")
    def _checkpoints_along_training(self) -> PipelineSpec:
        """Each fine-tuning step must be a step the training run reaches, evaluates (its KL moved there) and keeps."""
        if self.finetune_at is None:
            return self
        train = self.train
        if max(self.finetune_at) > train.max_steps:
            raise ValueError(
                f"finetune_at: step {max(self.finetune_at)} is past train.max_steps ({train.max_steps}): raise "
                "max_steps or drop the step"
            )
        if train.eval is None:
            raise ValueError(
                "finetune_at: each point's KL moved is the training run's evaluation at its step: give train.eval"
            )
        unevaluated = [step for step in self.finetune_at if not train.evaluates_at(step)]
        if unevaluated:
            raise ValueError(
                f"finetune_at: steps {unevaluated} are not evaluation steps of the training run (train.eval.every = "
                f"{train.eval.every}, max_steps = {train.max_steps}): set eval.every to a divisor of every step"
            )
        if self.evaluate_before:
            raise ValueError("finetune_at: evaluate_before evaluates the final model only: leave it false")
        kept = sorted({*(train.keep_checkpoints or ()), *self.finetune_at})
        self.train = TrainSpec.model_validate({**train.model_dump(), "keep_checkpoints": kept})
        return self

    def tags(self) -> dict[str, Any]:
        """Tags every stage's run carries (the pipeline preset's name and notes)."""
        return {f"pipeline_{key}": value for key, value in preset_tags(self.preset).items()}

    def finetune_specs(self, train_id: uuid.UUID) -> list[FinetuneSpec]:
        """The fine-tuning stage's specs, once the training run has an id: one from its final model, or one from
        each checkpoint of `finetune_at`."""
        steps = self.finetune_at or [None]
        return [FinetuneSpec(parent_id=train_id, parent_step=step, **self.finetune.model_dump()) for step in steps]

    def evaluate_spec(self, run_id: uuid.UUID) -> EvaluateSpec:
        """An evaluation stage's spec, of the fine-tuning run (or, with evaluate_before, of the training run)."""
        if self.evaluation is None:
            return EvaluateSpec(run_id=run_id, eval=self.finetune.eval or EvalSpec(), queue=self.finetune.queue)
        settings = self.evaluation.model_dump()
        if "eval" not in self.evaluation.model_fields_set and self.finetune.eval is not None:
            settings["eval"] = self.finetune.eval.model_dump()  # the safety evaluation fine-tuning ran, as before
        return EvaluateSpec(run_id=run_id, queue=self.finetune.queue, **settings)


JobSpec = Annotated[
    Annotated[TrainSpec, Tag("train")]
    | Annotated[FinetuneSpec, Tag("finetune")]
    | Annotated[EvaluateSpec, Tag("evaluate")]
    | Annotated[PipelineSpec, Tag("pipeline")],
    Discriminator(job_kind),
]
JOB_SPEC = TypeAdapter(JobSpec)
JOB_KINDS: dict[str, type[BaseModel]] = {
    "train": TrainSpec,
    "finetune": FinetuneSpec,
    "evaluate": EvaluateSpec,
    "pipeline": PipelineSpec,
}
