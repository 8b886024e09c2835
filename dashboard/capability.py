"""The numbers behind the Capability page: benchmarks before and after downstream fine-tuning (docs/method.md §3).

The paper's math setting fine-tunes a math-RL model on code and asks what that cost it on MATH500, and what it gained
on MBPP+ / HumanEval+, for GRPO and for FRPO at each λ. The scores are evaluation runs' `bench/<task>/<metric>`
series; pairing them by pipeline (before / after) and summarising them per setting is `analysis.capability`'s. This
module only picks the benchmark evaluations out of a selection and lays the numbers out for the charts, the tables
and their CSV files. Pure (no Streamlit, no HTTP), so what the page claims is tested directly.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis.capability import (
    AFTER,
    BEFORE,
    EXCLUDED_STATUSES,
    PREFIX,
    BenchmarkScore,
    headline,
    pipeline_scores,
    summarise_scores,
    task_of,
)
from analysis.capability import scores as scores_of
from analysis.capability import stderrs as stderrs_of
from analysis.pipelines import Budget, Series, Setting, Spread, budget_label, budget_of, by_setting
from dashboard.frontier import as_series

Json = dict[str, Any]

EVALUATE = "evaluate"
WHEN = {BEFORE: "before fine-tuning", AFTER: "after fine-tuning"}
STANDALONE = "standalone"  # an evaluation outside a pipeline: nothing to pair it with
NOT_MEASURED = "not measured"
RL_METHODS = ("grpo", "frpo")
# Benchmarks in the order a chart shows them: MATH-like first (what the code SFT may cost), then the code sets (what
# it should gain), then the rest; by name within each.
MATH_LIKE = ("math", "arith", "gsm8k")
CODE_LIKE = ("humaneval", "mbpp")
# Names as the paper writes them; any other task is shown as it is called.
BENCHMARK_NAMES = {
    "minerva_math500": "MATH500",
    "mbpp+": "MBPP+",
    "humaneval+": "HumanEval+",
    "mmlu": "MMLU",
    "ifeval": "IFEval",
    "gsm8k": "GSM8K",
}
RUN_COLUMNS = ["run_id", "setting", "method", "lamb", "seed", "budget", "when", "status", "pipeline"]
SUMMARY_COLUMNS = [
    "metric",
    "benchmark",
    "setting",
    "method",
    "lamb",
    "seeds",
    *(f"{side}{suffix}" for side in ("before", "after", "change") for suffix in ("", "_sd")),
]


@dataclass(frozen=True)
class Evaluation:
    """One benchmark evaluation run: the job, the setting its tags (inherited from the RL run) put it in, and its
    scores and standard errors by metric (`task/metric[/filter]`)."""

    job: Json
    method: str
    lamb: float | None
    seed: int | None
    budget: Budget
    scores: Mapping[str, float]
    stderrs: Mapping[str, float]

    @classmethod
    def of(cls, job: Json, series: Series) -> Evaluation:
        tags = job.get("tags") or {}
        method = str(tags.get("method") or "")
        seed = tags.get("seed")
        return cls(
            job=job,
            method=method,
            lamb=tags.get("lamb") if method == "frpo" else None,
            seed=int(seed) if seed is not None else None,
            budget=budget_of(tags, tags.get("parent_step")),
            scores=scores_of(series),
            stderrs=stderrs_of(series),
        )

    @property
    def when(self) -> str:
        """Before or after the pipeline's fine-tuning, or standalone."""
        return WHEN.get((self.job.get("tags") or {}).get("evaluates"), STANDALONE)


@dataclass(frozen=True)
class Gathered:
    """A selection's benchmark evaluations (failed and cancelled ones left out, and counted in `left_out` with the
    safety-only evaluations), and their scores paired by pipeline."""

    evaluations: list[Evaluation]
    scores: list[BenchmarkScore]
    left_out: dict[str, int]  # reason -> count

    def count(self, when: str) -> int:
        return sum(e.when == when for e in self.evaluations)

    def unfinished(self) -> int:
        return sum(e.job["status"] in ("queued", "running") for e in self.evaluations)


def is_benchmark(job: Json, series: Series) -> bool:
    """An evaluation that ran benchmarks (asked for, or logged): a safety-only evaluation logs `eval/*` instead."""
    return bool((job.get("tags") or {}).get("benchmarks")) or any(key.startswith(PREFIX) for key in series)


def gather(runs: Sequence[Json], api_series: Mapping[str, Mapping[str, Any]]) -> Gathered:
    """The benchmark evaluations among `runs` (any kinds: the others are ignored), from their series as the API
    returns them (`{run id: {key: {"steps", "values"}}}`), and their scores paired by pipeline."""
    evaluations: list[Evaluation] = []
    series: dict[str, Series] = {}
    left_out: Counter[str] = Counter()
    for job in runs:
        if job["kind"] != EVALUATE:
            continue
        run_id = str(job["id"])
        series[run_id] = as_series(api_series.get(run_id, {}))
        if not is_benchmark(job, series[run_id]):
            left_out["safety-only evaluation"] += 1
        elif job["status"] in EXCLUDED_STATUSES:
            left_out[str(job["status"])] += 1
        else:
            evaluations.append(Evaluation.of(job, series[run_id]))
    paired = pipeline_scores([e.job for e in evaluations], series)
    return Gathered(evaluations, paired, dict(left_out))


# --- which metrics, in what order -----------------------------------------------------------------------------------


def task_rank(task: str) -> int:
    name = task.lower()
    if any(part in name for part in MATH_LIKE):
        return 0
    return 1 if any(part in name for part in CODE_LIKE) else 2


def metric_order(metric: str) -> tuple[int, str, str]:
    task = task_of(metric)
    return task_rank(task), task, metric


def measured(evaluations: Iterable[Evaluation]) -> list[str]:
    """Every metric some evaluation logged, benchmark by benchmark in chart order."""
    return sorted({metric for e in evaluations for metric in e.scores}, key=metric_order)


def headline_metrics(evaluations: Iterable[Evaluation]) -> list[str]:
    """One metric per benchmark, its usual score (`analysis.capability.headline`), in chart order."""
    return sorted(headline(measured(evaluations)).values(), key=metric_order)


def benchmark_name(metric: str) -> str:
    task = task_of(metric)
    return BENCHMARK_NAMES.get(task, task)


def metric_name(metric: str) -> str:
    """The metric without its benchmark: "math_verify", "exact_match/last_number"."""
    return metric.partition("/")[2] or metric


# --- settings -------------------------------------------------------------------------------------------------------


def setting_label(setting: Setting) -> str:
    """GRPO's budget or FRPO's λ (`Setting.label`); an evaluation of a run that had no RL (a warm start) says so."""
    return setting.label if setting.method in RL_METHODS else "no RL (e.g. a warm start)"


def settings_of(evaluations: Iterable[Evaluation]) -> list[tuple[Setting, list[Evaluation]]]:
    """`analysis.pipelines.by_setting`'s groups (GRPO by budget first, FRPO by λ), runs without RL last."""
    return sorted(by_setting(evaluations), key=lambda group: group[0].method not in RL_METHODS)


# --- the tables -----------------------------------------------------------------------------------------------------


def stderr_column(metric: str) -> str:
    return f"{metric} stderr"


def _run_order(evaluation: Evaluation) -> tuple[bool, int, int, str]:
    when = (WHEN[BEFORE], WHEN[AFTER], STANDALONE).index(evaluation.when)
    return evaluation.seed is None, evaluation.seed or 0, when, str(evaluation.job["id"])


def runs_frame(evaluations: Sequence[Evaluation], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per evaluation run, by setting (GRPO first), then seed, before ahead of after: who it measured, when,
    and each of `metrics` with its standard error; NaN where a run did not measure it (never 0)."""
    rows = []
    for setting, members in settings_of(evaluations):
        for e in sorted(members, key=_run_order):
            tags = e.job.get("tags") or {}
            row = {
                "run_id": str(e.job["id"]),
                "setting": setting_label(setting),
                "method": e.method or None,
                "lamb": e.lamb,
                "seed": e.seed,
                "budget": budget_label(e.budget),
                "when": e.when,
                "status": e.job["status"],
                "pipeline": tags.get("pipeline"),
            }
            for metric in metrics:
                row[metric] = e.scores.get(metric, math.nan)
                row[stderr_column(metric)] = e.stderrs.get(metric, math.nan)
            rows.append(row)
    columns = RUN_COLUMNS + [c for metric in metrics for c in (metric, stderr_column(metric))]
    return pd.DataFrame(rows, columns=columns).astype({"lamb": "float64", "seed": "Int64"})


def _spread(spread: Spread) -> tuple[float, float]:
    return spread.mean, spread.sd


def summary_frame(paired: Sequence[BenchmarkScore], metrics: Sequence[str]) -> pd.DataFrame:
    """Per metric (in `metrics`' order) and setting (GRPO first, then FRPO by λ): the seeds, and the mean and sd over
    them of the score before fine-tuning, after it, and the change (after − before); NaN where not measured."""
    rows = [
        (
            s.metric,
            benchmark_name(s.metric),
            setting_label(s.setting),
            s.setting.method,
            s.setting.lamb,
            s.seeds,
            *_spread(s.before),
            *_spread(s.after),
            *_spread(s.change),
        )
        for s in summarise_scores(paired, metrics)
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS).astype({"lamb": "float64"})


def has_before(summary: pd.DataFrame) -> bool:
    """Whether any pipeline was evaluated before its fine-tuning too (`evaluate_before: true`)."""
    return bool(summary["before"].notna().any())


def lambda_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per setting, with each metric's mean and sd after fine-tuning as `<metric>` and `<metric>_sd`: what
    `charts.lambda_figure` draws (FRPO against λ, each GRPO budget as a λ → ∞ line)."""
    settings = summary.drop_duplicates("setting")[["setting", "method", "lamb"]].reset_index(drop=True)
    frame = settings.rename(columns={"setting": "group"})
    frame["family"] = frame["method"].map({"grpo": "GRPO", "frpo": "FRPO"})
    for metric, rows in summary.groupby("metric", sort=False):
        by_setting_ = rows.set_index("setting")
        frame[metric] = frame["group"].map(by_setting_["after"]).astype("float64")
        frame[f"{metric}_sd"] = frame["group"].map(by_setting_["after_sd"]).astype("float64")
    return frame


def shown(value: float, error: float | None = None, *, signed: bool = False) -> str:
    """A number as a table shows it: "0.412 ± 0.020" (± a standard error or an sd, where there is one), or "not
    measured"."""
    if value is None or not math.isfinite(value):
        return NOT_MEASURED
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return f"{text} ± {error:.3f}" if error is not None and math.isfinite(error) else text


def shown_runs(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """The per-run table as the page shows it: a link to each run's page and each metric as "value ± stderr"."""
    table = frame.drop(columns=["run_id", *metrics, *map(stderr_column, metrics)])
    table.insert(0, "run", "run?run=" + frame["run_id"])
    table["pipeline"] = [p[:8] if isinstance(p, str) else "" for p in frame["pipeline"]]
    for metric in metrics:
        table[metric] = [shown(v, e) for v, e in zip(frame[metric], frame[stderr_column(metric)], strict=True)]
    return table


def shown_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The per-setting table as the page shows it: "mean ± sd" over seeds, the change signed."""
    table = summary[["benchmark", "metric", "setting", "seeds"]].copy()
    for side in ("before", "after", "change"):
        values = zip(summary[side], summary[f"{side}_sd"], strict=True)
        table[side] = [shown(v, sd, signed=side == "change") for v, sd in values]
    return table
