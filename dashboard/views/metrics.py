"""Metrics: any stored series, across any runs, smoothed, against step or the share of each run, or as the
difference from a pinned run.

The view lives in the URL: `/metrics?runs=<id>,…&keys=reward,loss&smooth=0.6&x=progress&ref=<id>&diff=1`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, reads, ui
from dashboard.client import ApiConfig, concurrently
from dashboard.series import X_AXES, minus_reference, smooth, x_values
from frpo_client import Json

KINDS = ("train", "finetune", "evaluate")
PREFERRED = ("eval/refusal_rate", "reward", "robust_reward")  # preselected when the runs logged them
EMPTY = "**Pick runs or a sweep** in the sidebar: every series they logged can be drawn here."


def _float_param(name: str, default: float, low: float, high: float) -> float:
    try:
        value = float(ui.query_value(name) or default)
    except ValueError:
        return default
    return min(max(value, low), high)


def choose_view(config: ApiConfig, runs: list[Json], keys: list[str]) -> tuple[list[str], float, str, str | None, bool]:
    """The sidebar: the metrics, smoothing, x-axis and reference run; mirrored in the URL."""
    sidebar = st.sidebar
    wanted = [k for k in ui.query_list("keys") if k in keys] or [k for k in PREFERRED if k in keys][:1] or keys[:1]
    chosen = sidebar.multiselect("Metrics", keys, default=wanted, key="metrics_keys")
    weight = sidebar.slider(
        "Smoothing",
        0.0,
        0.99,
        _float_param("smooth", 0.0, 0.0, 0.99),
        0.01,
        key="metrics_smooth",
        help="Exponential moving average with its start-up bias removed (as TensorBoard and W&B draw it); 0 = raw.",
    )
    axes = list(X_AXES)
    axis = sidebar.radio(
        "x-axis",
        axes,
        index=axes.index(ui.query_value("x")) if ui.query_value("x") in axes else 0,
        format_func=X_AXES.get,
        key="metrics_x",
    )
    reference = ui.pin_reference(
        {str(r["id"]): ui.run_label(r) for r in runs},
        key="metrics_ref",
        label="Reference run",
        unpinned="none",
        help="Drawn dashed grey; with 'difference' on, every run is drawn minus it.",
    )
    diff = bool(reference) and sidebar.checkbox(
        "Difference from the reference", value=ui.query_value("diff") == "1", key="metrics_diff"
    )
    ui.set_query(
        keys=chosen,
        smooth=f"{weight:g}" if weight else None,
        x=axis if axis != "step" else None,
        diff="1" if diff else None,
    )
    return chosen, weight, axis, reference, diff


def metric_frame(
    runs: list[Json], series: dict[str, dict[str, Json]], key: str, weight: float, axis: str, reference: str | None
) -> pd.DataFrame:
    """run, label, x, y (smoothed), raw: one row per point of `key` in each run that logged it; with `reference`,
    y and raw are differences from that run's (smoothed or raw) series."""
    lines = {}
    for run in runs:
        data = series.get(str(run["id"]), {}).get(key) or {}
        if data.get("steps"):
            x = x_values(data["steps"], axis)
            lines[str(run["id"])] = (ui.run_label(run), x, smooth(data["values"], weight), list(data["values"]))
    rows = []
    base = lines.get(reference) if reference else None
    for run_id, (label, x, y, raw) in lines.items():
        if base is not None:
            y, raw = minus_reference(x, y, base[1], base[2]), minus_reference(x, raw, base[1], base[3])
        rows += [{"run": run_id, "label": label, "x": a, "y": b, "raw": c} for a, b, c in zip(x, y, raw, strict=True)]
    return pd.DataFrame(rows, columns=["run", "label", "x", "y", "raw"])


def render() -> None:
    st.title("Metrics")
    st.caption("Any series the runs logged, side by side. Pick runs or a sweep, then the metrics to draw.")
    config = ui.api_config()
    mode, run_ids, sweep_id = ui.choose_selection(
        config, prefix="metrics", title="Runs", kinds=KINDS, runs_help="Any runs: RL, fine-tuning or evaluation."
    )
    if not run_ids and not sweep_id:
        ui.set_query(**ui.selection_query(mode, run_ids, sweep_id))
        st.info(EMPTY)
        return
    runs = (
        [reads.job(config.url, config.key, run_id) for run_id in run_ids]
        if run_ids
        else reads.runs_of(config.url, config.key, (), sweep_id)
    )
    ui.set_query(**ui.selection_query(mode, run_ids, sweep_id))
    per_run = concurrently(lambda run: reads.metric_keys(config.url, config.key, str(run["id"])), runs)
    keys = sorted({key for found in per_run for key in found})
    if not keys:
        st.info("These runs have logged no metrics yet.")
        return
    chosen, weight, axis, reference, diff = choose_view(config, runs, keys)
    series = reads.series(config.url, config.key, reads.ids(runs), tuple(chosen))
    x_title = X_AXES[axis]
    for key in chosen:
        frame = metric_frame(runs, series, key, weight, axis, reference if diff else None)
        if frame.empty:
            st.caption(f"`{key}`: not logged by these runs.")
            continue
        how = f"smoothed (EMA weight {weight:g}; raw faint behind)" if weight else "as logged"
        what = f"minus the reference run's {key}" if diff else key
        fig = charts.metric_runs_figure(
            frame,
            title=what,
            subtitle=f"one line per run, {how}; downsampled by the API for long runs",
            x_title=x_title,
            y_title=f"Δ {key}" if diff else key,
            reference=reference,
        )
        ui.chart(fig, f"{key} across runs", frame, key=f"metric-{key}")


if __name__ == "__main__":
    ui.run_page(render)
