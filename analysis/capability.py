"""Capability benchmarks before and after downstream fine-tuning, per pipeline and per setting (docs/method.md §3).

The paper's math setting asks what code SFT costs a math-RL model on MATH500, and what the SFT gained on MBPP+ /
HumanEval+, for GRPO and FRPO at each λ. A pipeline with `evaluate_before` runs the same benchmarks twice: on the RL
model (an evaluate run tagged `evaluates: before_finetune`, child of the RL run) and on the fine-tuned model
(`after_finetune`, child of the fine-tuning run). Both carry the pipeline's id (`pipeline`) and inherit the RL run's
method, λ, seed and budget, which is what pairs them here. Each logs `bench/<task>/<metric>[/<filter>]` once, at
step 0, with `…_stderr` beside it where the harness gives one. Beside them, the RL run's own training reward at its
start and its end says whether RL moved the policy at all before the scores "before fine-tuning" were taken.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from analysis.pipelines import Budget, Series, Setting, Spread, budget_of, by_setting, last, text_table

PREFIX = "bench/"
BEFORE, AFTER = "before_finetune", "after_finetune"
STDERR = "_stderr"
EXCLUDED_STATUSES = ("failed", "cancelled")
# Each benchmark's usual score, in order of preference: pass@1 for code, math-verify's (else exact-match) accuracy
# for MATH500, prompt-level strict accuracy for IFEval, accuracy for multiple choice (MMLU).
HEADLINE_METRICS = ("pass@1", "math_verify", "exact_match", "prompt_level_strict_acc", "acc", "acc_norm")


def scores(series: Series) -> dict[str, float]:
    """``{"task/metric[/filter]": value}`` of one evaluation run's ``bench/`` series (its last point; standard
    errors left out)."""
    return {
        key.removeprefix(PREFIX): value
        for key in series
        if key.startswith(PREFIX) and not key.endswith(STDERR) and (value := last(series, key)) is not None
    }


def stderrs(series: Series) -> dict[str, float]:
    """The standard errors the harness reported, under the same keys as :func:`scores`."""
    return {
        key.removeprefix(PREFIX).removesuffix(STDERR): value
        for key in series
        if key.startswith(PREFIX) and key.endswith(STDERR) and (value := last(series, key)) is not None
    }


def task_of(metric: str) -> str:
    return metric.split("/", 1)[0]


def _preference(metric: str) -> tuple[int, int, str]:
    parts = metric.split("/")
    name = parts[1] if len(parts) > 1 else ""
    rank = HEADLINE_METRICS.index(name) if name in HEADLINE_METRICS else len(HEADLINE_METRICS)
    return rank, len(parts), metric


def headline(metrics: Iterable[str]) -> dict[str, str]:
    """task → the one metric a chart shows for it: the benchmark's usual score (:data:`HEADLINE_METRICS`), unfiltered
    before filtered, else the first by name."""
    best: dict[str, str] = {}
    for metric in metrics:
        task = task_of(metric)
        if task not in best or _preference(metric) < _preference(best[task]):
            best[task] = metric
    return dict(sorted(best.items()))


@dataclass(frozen=True)
class BenchmarkScore:
    """One metric of one pipeline (one seed of one setting), before and after its downstream fine-tuning."""

    pipeline: str
    method: str
    lamb: float | None
    seed: int
    budget: Budget
    metric: str
    before: float | None
    after: float | None

    @property
    def change(self) -> float | None:
        """after − before: what the downstream fine-tuning did to this score (negative: it was lost)."""
        if self.before is None or self.after is None:
            return None
        return self.after - self.before


def pipeline_scores(evaluations: Sequence[Mapping], series: Mapping[str, Series]) -> list[BenchmarkScore]:
    """Every (pipeline, metric) pair measured by the pipelines' evaluation runs, before and after fine-tuning.

    ``evaluations`` are jobs as the API returns them (``id``, ``status``, ``tags``); ``series`` maps a run's id to its
    metric series. Failed and cancelled runs say nothing; a run not yet finished gives ``None`` for its side; an
    evaluation outside a pipeline (no ``pipeline`` / ``evaluates`` tag) has no other side and is not paired. A
    pipeline that fine-tunes from several checkpoints of its RL run (``parent_step``) gives one point per step.
    """
    sides: dict[str, dict[str, dict[str, float]]] = {}
    tags_of: dict[str, Mapping] = {}
    for job in evaluations:
        tags = job.get("tags") or {}
        pipeline, when = tags.get("pipeline"), tags.get("evaluates")
        if job.get("status") in EXCLUDED_STATUSES or not pipeline or when not in (BEFORE, AFTER):
            continue
        point = str(pipeline) if tags.get("parent_step") is None else f"{pipeline}@{tags['parent_step']}"
        sides.setdefault(point, {})[when] = scores(series.get(str(job["id"]), {}))
        tags_of.setdefault(point, tags)
    result = []
    for pipeline, measured in sides.items():
        tags = tags_of[pipeline]
        before, after = measured.get(BEFORE, {}), measured.get(AFTER, {})
        for metric in sorted(set(before) | set(after)):
            result.append(
                BenchmarkScore(
                    pipeline=pipeline,
                    method=str(tags.get("method")),
                    lamb=tags.get("lamb"),
                    seed=int(tags.get("seed", 0)),
                    budget=budget_of(tags, tags.get("parent_step")),
                    metric=metric,
                    before=before.get(metric),
                    after=after.get(metric),
                )
            )
    return result


@dataclass(frozen=True)
class ScoreSummary:
    """One metric of one setting over its seeds."""

    setting: Setting
    metric: str
    seeds: int
    before: Spread
    after: Spread
    change: Spread

    @property
    def label(self) -> str:
        return self.setting.label


def summarise_scores(scores: Iterable[BenchmarkScore], metrics: Iterable[str] | None = None) -> list[ScoreSummary]:
    """Per metric (``metrics``, default: every one measured, by name), one summary per setting in
    :func:`analysis.pipelines.by_setting`'s order: GRPO first, then FRPO by increasing λ."""
    scores = list(scores)
    wanted = sorted({s.metric for s in scores}) if metrics is None else list(metrics)
    summaries = []
    for metric in wanted:
        for setting, members in by_setting(s for s in scores if s.metric == metric):
            summaries.append(
                ScoreSummary(
                    setting=setting,
                    metric=metric,
                    seeds=len(members),
                    before=Spread.of(s.before for s in members),
                    after=Spread.of(s.after for s in members),
                    change=Spread.of(s.change for s in members),
                )
            )
    return summaries


def format_scores(summaries: Sequence[ScoreSummary]) -> str:
    """A plain-text table: one row per (benchmark metric, setting), mean ± sd over seeds."""
    header = ("benchmark", "setting", "seeds", "before fine-tuning", "after fine-tuning", "change")
    rows = [
        (s.metric, s.label, str(s.seeds), s.before.format(), s.after.format(), _signed(s.change)) for s in summaries
    ]
    return text_table(header, rows)


def _signed(spread: Spread) -> str:
    if spread.n == 0 or math.isnan(spread.mean):
        return "–"
    return f"{spread.mean:+.2f} ± {spread.sd:.2f}"


@dataclass(frozen=True)
class TrainingReward:
    """One RL run's training reward at its start and at its end: what RL itself did, to read the benchmarks before
    fine-tuning against (did the policy move on its own task at all?). Each end is the mean over a few logged steps
    (:func:`training_reward`'s ``window``): one step's reward is a mean over a single small sampled batch."""

    method: str
    lamb: float | None
    seed: int
    budget: Budget
    first: float | None
    last: float | None

    @property
    def change(self) -> float | None:
        if self.first is None or self.last is None:
            return None
        return self.last - self.first


def training_reward(tags: Mapping, series: Series, key: str, window: int = 1) -> TrainingReward:
    """An RL run's ``key`` (e.g. ``rewards/math/mean``) as the mean of its first ``window`` logged steps and of its
    last ``window``, with the run's setting. With 32 samples a step (the toy presets) a share such as the accuracy
    has a standard error near 0.09 at one step; five steps bring it to about 0.04."""
    if window < 1:
        raise ValueError(f"window={window} must be at least 1 step")
    values = [value for _, value in series.get(key) or ()]
    return TrainingReward(
        method=str(tags.get("method")),
        lamb=tags.get("lamb"),
        seed=int(tags.get("seed", 0)),
        budget=budget_of(tags),
        first=_mean(values[:window]),
        last=_mean(values[-window:]),
    )


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def format_rewards(rewards: Iterable[TrainingReward]) -> str:
    """A plain-text table: per setting (:func:`analysis.pipelines.by_setting`), the reward at the start and at the end
    of RL and the change, mean ± sd over seeds."""
    header = ("setting", "seeds", "start of RL", "end of RL", "change")
    rows = [
        (
            setting.label,
            str(len(members)),
            Spread.of(r.first for r in members).format(),
            Spread.of(r.last for r in members).format(),
            _signed(Spread.of(r.change for r in members)),
        )
        for setting, members in by_setting(rewards)
    ]
    return text_table(header, rows)
