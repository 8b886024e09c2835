"""Pipelines (train → fine-tune → evaluate as one submission) and the union of every job kind."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, TypeAdapter

from store.specs.base import STRICT, FromPreset, job_kind, preset_field, preset_tags
from store.specs.evaluate import EvaluateSpec, EvaluateStage
from store.specs.finetune import FinetuneSpec, FinetuneStage
from store.specs.safety_eval import EvalSpec
from store.specs.train import TrainSpec


class PipelineSpec(FromPreset, preset_kind="pipeline"):
    """Train → fine-tune → evaluate as one submission: linked runs, each started when the one before succeeds (a
    failure or cancellation cancels the stages after it). With `evaluate_before`, the trained model is evaluated
    too, by the same evaluation, as a second child of the training run: before and after fine-tuning, alike."""

    model_config = STRICT

    kind: Literal["pipeline"] = "pipeline"
    preset: str | None = preset_field("pipeline")
    train: TrainSpec = Field(default_factory=TrainSpec)
    finetune: FinetuneStage = Field(default_factory=FinetuneStage)
    evaluate: bool = Field(True, description="Also evaluate the fine-tuned model once it is done.")
    evaluate_before: bool = Field(
        False, description="Also evaluate the trained model before fine-tuning (same evaluation), for before/after."
    )
    evaluation: EvaluateStage | None = Field(
        None,
        description="What the evaluation stage(s) measure (benchmarks, safety, generation); null: the safety "
        "evaluation with the fine-tuning stage's eval settings.",
    )

    def tags(self) -> dict[str, Any]:
        """Tags every stage's run carries (the pipeline preset's name and notes)."""
        return {f"pipeline_{key}": value for key, value in preset_tags(self.preset).items()}

    def finetune_spec(self, train_id: uuid.UUID) -> FinetuneSpec:
        """The fine-tuning stage's spec, once the training run has an id."""
        return FinetuneSpec(parent_id=train_id, **self.finetune.model_dump())

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
