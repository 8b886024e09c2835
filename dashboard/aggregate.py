"""The numbers behind every chart: runs grouped by method and λ, mean and a band over seeds on a common step grid,
and the before / after / drop of a metric across downstream fine-tuning.

Pure pandas and numpy (no Streamlit, no HTTP), so what a chart claims is tested directly.

Inputs are what the API returns: jobs (dicts with "id", "kind", "status", "tags", "parent_id") and, per run, series
`{key: {"steps": [...], "values": [...]}}`. A fine-tuning run inherits its RL parent's tags (method, λ, β, seed, …),
which is what lets it be grouped with the method it degrades.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.pipelines import method_name

# Band definitions, stated on every chart that draws one.
BANDS = {
    "minmax": "band = min–max over seeds",
    "sd": "band = mean ± 1 sd over seeds",
}
MAX_GRID = 400  # points of the common step grid per group: more than a chart can show
EXCLUDED_STATUSES = ("failed", "cancelled")  # a broken run says nothing about the method
# Settings (run tags) that are never averaged over: when they differ among the runs of one method and λ (GRPO at
# several budgets, a β axis, two downstream data sets), the runs are split into one group per value.
SETTINGS = {
    "base_model": "model",
    "dataset": "prompts",
    "beta": "β",
    "max_steps": "steps",
    "learning_rate": "lr",
    "downstream_dataset": "fine-tuned on",
}
LONG_COLUMNS = ["run_id", "group", "family", "order", "method", "lamb", "seed", "step", "value"]


@dataclass(frozen=True)
class Group:
    """What runs are grouped by: the method, for FRPO λ (GRPO's λ only sets the robust reward it logs), and any
    setting that differs among runs of the same method and λ. Only seeds are averaged over."""

    method: str
    lamb: float | None
    settings: tuple[tuple[str, Any], ...] = ()

    @property
    def family(self) -> str:
        """The label without λ: FRPO's runs of one family differ only in λ (the sweep page's λ axis)."""
        name = method_name(self.method)
        if not self.settings:
            return name
        return f"{name} ({', '.join(f'{SETTINGS.get(k, k)}={_short(v)}' for k, v in self.settings)})"

    @property
    def label(self) -> str:
        if self.method == "frpo" and self.lamb is not None:
            name = f"FRPO λ={self.lamb:g}"
            return f"{name}{self.family.removeprefix('FRPO')}" if self.settings else name
        return self.family

    @property
    def order(self) -> tuple[int, float, str]:
        """GRPO, the baseline, first; then the other baselines by name; then FRPO by increasing λ (smaller λ = more
        conservative)."""
        rank = {"grpo": 0, "frpo": 2}.get(self.method, 1)  # the other baselines between GRPO and FRPO
        return rank, self.lamb if self.lamb is not None else math.inf, f"{self.method} {self.settings!r}"


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _method_lamb(tags: Mapping[str, Any]) -> tuple[str, float | None]:
    method = str(tags.get("method") or "").lower()
    lamb = tags.get("lamb")
    return method, float(lamb) if method == "frpo" and isinstance(lamb, int | float) else None


def split_settings(runs: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The SETTINGS that differ among usable runs of one method and λ: those split groups."""
    seen: dict[tuple[str, float | None, str], set[str]] = {}
    for run in runs:
        if usable(run):
            tags = run.get("tags") or {}
            for key in SETTINGS:
                seen.setdefault((*_method_lamb(tags), key), set()).add(repr(tags.get(key)))
    return tuple(key for key in SETTINGS if any(len(v) > 1 for (_, _, k), v in seen.items() if k == key))


def group_of(tags: Mapping[str, Any], split: Sequence[str] = ()) -> Group:
    method, lamb = _method_lamb(tags)
    return Group(method, lamb, tuple((key, tags.get(key)) for key in split))


def order_values(groups: Sequence[Group]) -> dict[Group, float]:
    """One sortable number per group (GRPO first, FRPO by λ, then the rest), for sorting frames."""
    return {group: float(i) for i, group in enumerate(sorted(set(groups), key=lambda g: g.order))}


def usable(job: Mapping[str, Any]) -> bool:
    return job.get("status") not in EXCLUDED_STATUSES


def long_frame(
    runs: Sequence[Mapping[str, Any]], series: Mapping[str, Mapping[str, Mapping[str, Any]]], key: str
) -> pd.DataFrame:
    """One row per (run, step) of `key`, with the run's group; failed and cancelled runs and null values left out."""
    split = split_settings(runs)
    groups = {str(run["id"]): group_of(run.get("tags") or {}, split) for run in runs if usable(run)}
    order = order_values(list(groups.values()))
    rows: list[tuple] = []
    for run in runs:
        group = groups.get(str(run["id"]))
        data = series.get(str(run["id"]), {}).get(key)
        if group is None or not data:
            continue
        head = (str(run["id"]), group.label, group.family, order[group], group.method, group.lamb)
        seed = (run.get("tags") or {}).get("seed")
        for step, value in zip(data["steps"], data["values"], strict=True):
            if value is not None and math.isfinite(value):
                rows.append((*head, seed, step, value))
    frame = pd.DataFrame(rows, columns=LONG_COLUMNS)
    return frame.astype({"step": "int64", "value": "float64", "order": "float64"})


def _grid(steps: list[np.ndarray], max_grid: int) -> np.ndarray:
    grid = np.unique(np.concatenate(steps))
    if len(grid) > max_grid:
        grid = np.unique(np.round(np.linspace(grid[0], grid[-1], max_grid)).astype(np.int64))
    return grid


def band_frame(long: pd.DataFrame, band: str = "minmax", max_grid: int = MAX_GRID) -> pd.DataFrame:
    """Per group and step: mean over runs, the band (`BANDS`) and n, the number of runs measured there.

    Runs are put on a common step grid (the union of their steps, thinned to `max_grid`) by linear interpolation
    within each run's own range: never extrapolated, so a run that stopped early simply stops counting in n.
    """
    if band not in BANDS:
        raise ValueError(f"band must be one of {sorted(BANDS)}, got {band!r}")
    columns = ["group", "family", "order", "method", "lamb", "step", "mean", "lo", "hi", "n"]
    parts: list[pd.DataFrame] = []
    for label, group in long.groupby("group", sort=False):
        per_run = [g.sort_values("step") for _, g in group.groupby("run_id", sort=False)]
        grid = _grid([g["step"].to_numpy() for g in per_run], max_grid)
        matrix = np.full((len(per_run), len(grid)), np.nan)
        for i, g in enumerate(per_run):
            steps, values = g["step"].to_numpy(), g["value"].to_numpy()
            inside = (grid >= steps[0]) & (grid <= steps[-1])
            matrix[i, inside] = np.interp(grid[inside], steps, values)
        n = np.sum(~np.isnan(matrix), axis=0)
        keep = n > 0
        matrix, grid, n = matrix[:, keep], grid[keep], n[keep]
        mean = np.nanmean(matrix, axis=0)
        if band == "minmax":
            lo, hi = np.nanmin(matrix, axis=0), np.nanmax(matrix, axis=0)
        else:
            sd = np.zeros_like(mean)
            several = n > 1
            if several.any():
                sd[several] = np.nanstd(matrix[:, several], axis=0, ddof=1)
            lo, hi = mean - sd, mean + sd
        first = group.iloc[0]
        parts.append(
            pd.DataFrame(
                {
                    "group": label,
                    "family": first["family"],
                    "order": first["order"],
                    "method": first["method"],
                    "lamb": first["lamb"],
                    "step": grid,
                    "mean": mean,
                    "lo": lo,
                    "hi": hi,
                    "n": n,
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True).sort_values(["order", "step"], kind="stable").reset_index(drop=True)


def per_run_change(long: pd.DataFrame) -> pd.DataFrame:
    """Per run: the value at its first measured step (before fine-tuning, step 0) and at its last (after)."""
    columns = ["run_id", "group", "family", "order", "method", "lamb", "seed", "before", "after", "drop", "last_step"]
    if long.empty:
        return pd.DataFrame(columns=columns)
    ordered = long.sort_values(["run_id", "step"], kind="stable")
    runs = ordered.groupby("run_id", sort=False)
    first, last = runs.head(1).set_index("run_id"), runs.tail(1).set_index("run_id")
    frame = first[["group", "family", "order", "method", "lamb", "seed"]].copy()
    frame["before"] = first["value"]
    frame["after"] = last["value"]
    frame["drop"] = frame["before"] - frame["after"]
    frame["last_step"] = last["step"]
    return frame.reset_index()[columns]


def before_after(long: pd.DataFrame) -> pd.DataFrame:
    """Per group: mean before, mean after, mean drop (before − after) and the sd of the drop over runs."""
    columns = ["group", "family", "order", "method", "lamb", "runs", "before", "after", "drop", "drop_sd"]
    changes = per_run_change(long)
    if changes.empty:
        return pd.DataFrame(columns=columns)
    summary = (
        changes.groupby(["group", "family", "order", "method"], sort=False, dropna=False)
        .agg(
            lamb=("lamb", "first"),
            runs=("run_id", "count"),
            before=("before", "mean"),
            after=("after", "mean"),
            drop=("drop", "mean"),
            drop_sd=("drop", "std"),
        )
        .reset_index()
    )
    return summary.sort_values("order", kind="stable").reset_index(drop=True)[columns]


def last_values(
    runs: Sequence[Mapping[str, Any]], series: Mapping[str, Mapping[str, Mapping[str, Any]]], key: str
) -> dict[str, float]:
    """Each run's last logged (finite) value of `key`; runs that never logged it are absent."""
    return _end_values(runs, series, key, -1)


def _end_values(
    runs: Sequence[Mapping[str, Any]], series: Mapping[str, Mapping[str, Mapping[str, Any]]], key: str, end: int
) -> dict[str, float]:
    """Each run's first (`end` 0) or last (`end` -1) finite value of `key`, by run id."""
    result: dict[str, float] = {}
    for run in runs:
        data = series.get(str(run["id"]), {}).get(key)
        finite = [v for v in (data or {}).get("values", []) if v is not None and math.isfinite(v)]
        if finite:
            result[str(run["id"])] = float(finite[end])
    return result


def has_values(series: Mapping[str, Mapping[str, Mapping[str, Any]]], key: str) -> bool:
    """Whether any run logged `key` (so a chart can say "not measured" instead of drawing nothing)."""
    return any(any(v is not None for v in (by_key.get(key) or {}).get("values", [])) for by_key in series.values())


def first_values(
    runs: Sequence[Mapping[str, Any]], series: Mapping[str, Mapping[str, Mapping[str, Any]]], key: str
) -> dict[str, float]:
    """Each run's first logged (finite) value of `key`: for a fine-tuning run, the model before fine-tuning."""
    return _end_values(runs, series, key, 0)


def group_means(per_run: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Per group: `runs`, and for each column its mean (`<column>`) and sd over runs (`<column>_sd`)."""
    out = ["group", "family", "order", "method", "lamb", "runs"] + [f"{c}{s}" for c in columns for s in ("", "_sd")]
    if per_run.empty:
        return pd.DataFrame(columns=out)
    grouped = per_run.groupby(["group", "family", "order", "method"], sort=False, dropna=False)
    summary = grouped.agg(lamb=("lamb", "first"), runs=("run_id", "count")).reset_index()
    for column in columns:
        stats = grouped[column].agg(["mean", "std"]).reset_index(drop=True)
        summary[column], summary[f"{column}_sd"] = stats["mean"].to_numpy(), stats["std"].to_numpy()
    return summary.sort_values("order", kind="stable").reset_index(drop=True)[out]
