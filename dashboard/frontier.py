"""The numbers behind the frontier page: is FRPO more robust, or did it only train harder? (docs/method.md §7)

A selection's pipelines (an RL run and the downstream fine-tuning run that started from it) become
`analysis.pipelines.PipelineResult`s: x is the KL the RL run moved from its starting model (its last `eval/kl_safety`,
or its evaluation at the step a fine-tuning started from), y a robustness measure after fine-tuning. The baseline's
frontier (GRPO's unless another loss type present, e.g. Dr. GRPO, is picked) and the verdict per setting are
`analysis.verdict.compare`'s; this module only gathers the runs and lays the numbers out for the chart, the verdicts,
a pinned reference point and their CSV files. Pure (no Streamlit, no HTTP), so what the page claims is tested
directly.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis.frontier import MEASURES, Measure
from analysis.pipelines import (
    SAMPLED_KEYS,
    PipelineResult,
    baseline_budgets_differ,
    budget_label,
    frontier_points,
    labelled,
    method_name,
    pipeline_result,
    point_key,
    varying,
)
from analysis.verdict import Comparison

Json = dict[str, Any]

KL_KEY = "eval/kl_safety"  # logged by RL runs with `eval` set: the KL from the model RL started from
# the sampled measures beside the greedy ones: analysis.pipelines reads them where the runs logged them
RL_KEYS = (KL_KEY, SAMPLED_KEYS[KL_KEY])
FINETUNE_KEYS = ("eval/refusal_rate", SAMPLED_KEYS["eval/refusal_rate"], "eval/strongreject", "eval/reward_normal")
DEFAULT_MEASURE = "refusal_after_finetune"
# What each measure is read from (the fine-tuning run's series), to say which key is missing when none was logged.
MEASURE_KEYS = {
    "refusal_after_finetune": "eval/refusal_rate",
    "drop": "eval/refusal_rate",
    "strongreject_after_finetune": "eval/strongreject",
    "helpfulness_after_finetune": "eval/reward_normal",
}
POINT_COLUMNS = ["setting", "method", "lamb", "budget", "seed", "rl_run", "finetune_run", "kl_moved", "value"]


@dataclass(frozen=True)
class Pipeline:
    """One seed of one setting: the RL run, the fine-tuning run that started from it, and what they measured."""

    rl: Json
    finetune: Json
    result: PipelineResult


@dataclass(frozen=True)
class Gathered:
    """The finished pipelines of a selection, and how many fine-tuning runs were left out and why."""

    pipelines: list[Pipeline]
    left_out: dict[str, int]  # reason -> count

    def with_kl(self) -> list[Pipeline]:
        return [p for p in self.pipelines if p.result.kl_moved is not None]


def as_series(api_series: Mapping[str, Mapping[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """The API's `{key: {"steps", "values"}}` as `analysis.pipelines.Series` (`{key: [(step, value)]}`), finite values
    only, steps ascending."""
    return {
        key: sorted(
            (int(step), float(value))
            for step, value in zip(data.get("steps", []), data.get("values", []), strict=True)
            if value is not None and math.isfinite(value)
        )
        for key, data in api_series.items()
        if data
    }


def gather(
    finetune: Sequence[Json],
    rl: Sequence[Json],
    finetune_series: Mapping[str, Mapping[str, Any]],
    rl_series: Mapping[str, Mapping[str, Any]],
) -> Gathered:
    """Every succeeded fine-tuning run whose RL parent (also succeeded) is in `rl`, as a pipeline. The budget, method,
    λ and seed come from the RL run's tags, as `frpo demo` reads them; a fine-tuning run from the RL run's checkpoint
    (its `parent_step` tag) is the point at that step of the run."""
    parents = {str(r["id"]): r for r in rl}
    pipelines: list[Pipeline] = []
    left_out: Counter[str] = Counter()
    for job in finetune:
        parent = parents.get(str(job.get("parent_id")))
        if job["status"] in ("queued", "running"):
            left_out["still queued or running"] += 1
        elif job["status"] != "succeeded":
            left_out[str(job["status"])] += 1
        elif parent is None:
            left_out["its RL run is not in the selection"] += 1
        else:
            result = pipeline_result(
                parent.get("tags") or {},
                as_series(rl_series.get(str(parent["id"]), {})),
                as_series(finetune_series.get(str(job["id"]), {})),
                (job.get("tags") or {}).get("parent_step"),
            )
            pipelines.append(Pipeline(parent, job, result))
    return Gathered(pipelines, dict(left_out))


def baselines(pipelines: Sequence[Pipeline]) -> list[str]:
    """The baseline loss types these pipelines ran (every method but FRPO), GRPO first: each can trace the frontier."""
    return sorted({p.result.method for p in pipelines} - {"frpo"}, key=lambda method: (method != "grpo", method))


def default_baseline(pipelines: Sequence[Pipeline]) -> str:
    """GRPO, or the first other baseline when the selection has no GRPO (still "grpo" when it has none at all)."""
    return next(iter(baselines(pipelines)), "grpo")


def setting_of(result: PipelineResult, differ: set[str], baseline: str = "grpo") -> str:
    """The key `analysis.pipelines.frontier_points` files a pipeline under: the baseline's budget, "FRPO λ=…", or
    another baseline's name (`differ`: its budget parts that split it, `analysis.pipelines.baseline_budgets_differ`)."""
    return point_key(result, baseline, differ)


def baseline_budgets(pipelines: Sequence[Pipeline], measure: str, baseline: str = "grpo") -> list[str]:
    """The baseline's budgets with at least one point (KL moved and `measure`): the points its frontier is traced
    through."""
    return list(compare_points(pipelines, measure, baseline)[0])


def setting_labels(pipelines: Sequence[Pipeline], baseline: str = "grpo") -> dict[str, str]:
    """setting -> what a person reads: "GRPO (steps 60)", "GRPO @60 (one run)" (only the budget parts that differ
    between the baseline's runs), "FRPO λ=0.5", "Dr. GRPO"."""
    baseline_differ = varying(p.result.budget for p in pipelines if p.result.method == baseline)
    differ = baseline_budgets_differ([p.result for p in pipelines], baseline)
    labels = {}
    for p in pipelines:
        setting = setting_of(p.result, differ, baseline)
        if p.result.method == baseline:
            labels[setting] = labelled(method_name(baseline), budget_label(p.result.budget, baseline_differ))
        else:
            labels[setting] = setting
    return labels


def value_of(result: PipelineResult, measure: str) -> float | None:
    value = getattr(result, measure)
    return None if value is None or not math.isfinite(value) else float(value)


def points_frame(pipelines: Sequence[Pipeline], measure: str, baseline: str = "grpo") -> pd.DataFrame:
    """One row per pipeline that has both numbers: its setting (readable label), runs, budget, KL moved and measure.
    The baseline first (by budget), then the other baselines, then FRPO by λ."""
    labels = setting_labels(pipelines, baseline)
    rows = []
    differ = baseline_budgets_differ([p.result for p in pipelines], baseline)
    for p in sorted(pipelines, key=lambda pipeline: _order(pipeline, baseline)):
        r, value = p.result, value_of(p.result, measure)
        if r.kl_moved is not None and value is not None:
            lamb = r.lamb if r.method == "frpo" else None
            runs = (str(p.rl["id"]), str(p.finetune["id"]))
            rows.append(
                (
                    labels[setting_of(r, differ, baseline)],
                    r.method,
                    lamb,
                    budget_label(r.budget),
                    r.seed,
                    *runs,
                    r.kl_moved,
                    value,
                )
            )
    return pd.DataFrame(rows, columns=POINT_COLUMNS).astype({"kl_moved": "float64", "value": "float64"})


def _order(pipeline: Pipeline, baseline: str) -> tuple:
    r = pipeline.result
    lamb = r.lamb if r.method == "frpo" and r.lamb is not None else -1.0
    return (r.method != baseline, r.method == "frpo", r.method, lamb, r.budget, r.seed)


def setting_means(points: pd.DataFrame) -> pd.DataFrame:
    """Per setting: mean and sd over seeds (sd 0 for one seed) of the KL moved and the measure, and the seeds."""
    columns = ["setting", "method", "lamb", "seeds", "kl_moved", "kl_moved_sd", "value", "value_sd"]
    if points.empty:
        return pd.DataFrame(columns=columns)
    grouped = points.groupby("setting", sort=False)
    summary = grouped.agg(method=("method", "first"), lamb=("lamb", "first"), seeds=("seed", "count")).reset_index()
    for column in ("kl_moved", "value"):
        stats = grouped[column].agg(["mean", "std"]).reset_index(drop=True)
        summary[column], summary[f"{column}_sd"] = stats["mean"].to_numpy(), stats["std"].fillna(0.0).to_numpy()
    return summary[columns]


def compare_points(
    pipelines: Sequence[Pipeline], measure: str, baseline: str = "grpo"
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, list[tuple[float, float]]]]:
    """(the baseline's per-seed points by budget, every other setting's): `analysis.pipelines.frontier_points`, for
    `compare`."""
    return frontier_points([p.result for p in pipelines], measure, reference=baseline)


def verdict_frame(comparison: Comparison) -> pd.DataFrame:
    """One row per FRPO λ: the numbers first (the gap to the frontier at each seed's KL, in the measure's direction:
    positive is more robust, with its interval, Holm-adjusted p, detectable effect and share of seeds inside GRPO's
    KL range), then the label and the sentence."""
    level = f"{comparison.level:.0%}"
    columns = [
        "setting", "kl_moved", comparison.measure.name, "frontier_at_kl", "gap", f"gap_low_{level}",
        f"gap_high_{level}", "p_holm", "detectable_80%", "seeds", "share_inside", "label", "verdict",
    ]  # fmt: skip
    rows = [
        (v.setting, v.kl, v.robustness, v.frontier, v.gap, v.low, v.high, v.p_more, v.detectable, v.seeds,
         v.share_inside, v.label, v.sentence)
        for v in comparison.verdicts
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def export_frame(
    points: pd.DataFrame,
    comparison: Comparison | None,
    measure: Measure,
    baseline: str = "grpo",
    pinned: Pinned | None = None,
) -> pd.DataFrame:
    """The chart's CSV: every run's point, each setting's mean, the baseline's frontier (its curve, left to right)
    and the pinned reference point, if any."""
    runs = points.assign(row="run")
    means = setting_means(points).assign(row="mean over seeds")
    curve = comparison.curve if comparison else []
    xs, ys = [x for x, _ in curve], [y for _, y in curve]
    line = pd.DataFrame({"row": f"{method_name(baseline)} frontier", "kl_moved": xs, "value": ys})
    pin = {"row": "reference", "setting": pinned.label, "kl_moved": pinned.kl, "value": pinned.value} if pinned else {}
    frame = pd.concat([runs, means, line, *([pd.DataFrame([pin])] if pin else [])], ignore_index=True)
    columns = ["row", *POINT_COLUMNS, "seeds", "kl_moved_sd", "value_sd"]
    return frame[columns].rename(columns={"value": measure.name})


def measure_named(name: str | None) -> Measure:
    """The measure called `name`, or the default (refusal after fine-tuning) for anything else."""
    return MEASURES.get(name or "", MEASURES[DEFAULT_MEASURE])


@dataclass(frozen=True)
class Pinned:
    """The pinned reference point: a setting's mean over seeds, or one pipeline's run."""

    label: str
    kl: float
    value: float


def pinned_point(points: pd.DataFrame, ref: str | None) -> Pinned | None:
    """The point `ref` names: a setting (its mean over seeds) or a run (its pipeline's point: the fine-tuning run's id
    or its RL parent's). None when nothing is pinned or the selection does not hold it."""
    if not ref or points.empty:
        return None
    means = setting_means(points).set_index("setting")
    if ref in means.index:
        return Pinned(ref, float(means.loc[ref, "kl_moved"]), float(means.loc[ref, "value"]))
    rows = points[(points["finetune_run"] == ref) | (points["rl_run"] == ref)]
    if rows.empty:
        return None
    row = rows.iloc[0]
    return Pinned(run_label(row), float(row["kl_moved"]), float(row["value"]))


def run_label(row: pd.Series) -> str:
    """ "FRPO λ=0.5, seed 1 (3f2a9c1e)": a pipeline's point, by its setting, seed and fine-tuning run."""
    return f"{row['setting']}, seed {row['seed']} ({str(row['finetune_run'])[:8]})"


def reference_options(points: pd.DataFrame) -> dict[str, str]:
    """What can be pinned (value → label): every setting (its mean), then every pipeline (by its fine-tuning run)."""
    settings = {setting: f"{setting} (mean over seeds)" for setting in dict.fromkeys(points["setting"])}
    runs = {str(row["finetune_run"]): run_label(row) for _, row in points.iterrows()}
    return {**settings, **runs}


def against_reference(points: pd.DataFrame, pinned: Pinned, measure: Measure) -> pd.DataFrame:
    """Each setting's mean against the pinned point: the KL it moved beyond the reference's, and its measure's gap,
    signed so that positive is more robust whichever way the measure points."""
    means = setting_means(points)
    return pd.DataFrame(
        {
            "setting": means["setting"],
            "seeds": means["seeds"],
            "kl_moved": means["kl_moved"],
            measure.name: means["value"],
            "kl_moved − reference": means["kl_moved"] - pinned.kl,
            "more robust than the reference by": means["value"].map(measure.signed) - measure.signed(pinned.value),
        }
    )
