"""Plotly figures from the frames of `dashboard.aggregate`. Pure (no Streamlit, no HTTP), so tests read their traces.

Conventions every chart keeps, so a newcomer can read one without docs: a title that says what is measured and a
subtitle that says how (what the line and the band are); axis titles with units; GRPO, the baseline, always first in
the legend and drawn dashed in grey; FRPO coloured by λ; hover shows the value, the band and how many runs it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

GRPO_COLOR = "#4d4d4d"
REFERENCE_COLOR = "#000000"  # a pinned reference point (the frontier's star)
GREYS = [GRPO_COLOR, "#8c8c8c", "#262626", "#b3b3b3"]
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22"]
HEIGHT = 430
FONT = dict(size=14)


def is_baseline(label: str, reference: str | None = None) -> bool:
    """The group others are read against: the pinned `reference` when one is, else GRPO (at any budget)."""
    if reference is not None:
        return label == reference
    return label == "GRPO" or label.startswith("GRPO (")


def group_colors(groups: Sequence[str], reference: str | None = None) -> dict[str, str]:
    """The baseline greys (GRPO, one per budget, or the pinned reference); the other groups (already in λ order) take
    the palette in turn."""
    colors: dict[str, str] = {}
    greys = others = 0
    for label in groups:
        if label in colors:
            continue
        if is_baseline(label, reference):
            colors[label] = GREYS[greys % len(GREYS)]
            greys += 1
        else:
            colors[label] = PALETTE[others % len(PALETTE)]
            others += 1
    return colors


def legend_name(label: str, reference: str | None = None) -> str:
    """'GRPO (baseline)', or 'GRPO baseline (β=0.1)' when GRPO runs at several budgets; with a pinned reference,
    that group is '<label> (reference)' and GRPO is named as any other group."""
    if reference is not None:
        return f"{label} (reference)" if label == reference else label
    if label == "GRPO":
        return "GRPO (baseline)"
    return label.replace("GRPO (", "GRPO baseline (", 1) if is_baseline(label) else label


def _baseline_first(labels: Iterable[str], reference: str | None) -> list[str]:
    """The groups in their order, the baseline (GRPO, or the pinned reference) moved to the front: it draws first,
    under the others, and leads the legend."""
    labels = list(labels)
    return sorted(labels, key=lambda label: not is_baseline(label, reference))


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _layout(fig: go.Figure, title: str, subtitle: str, height: int = HEIGHT, legend: str = "method") -> go.Figure:
    subplots = bool(fig.layout.annotations)  # subplot titles sit under the subtitle: leave them room
    fig.update_layout(
        title=dict(text=title, subtitle=dict(text=subtitle)),
        height=height,
        font=FONT,
        hovermode="closest",
        legend=dict(title=dict(text=legend), orientation="v"),
        margin=dict(t=115 if subplots else 90, l=70, r=20, b=60),
    )
    return fig


def band_traces(
    frame: pd.DataFrame,
    label: str,
    color: str,
    *,
    band_text: str,
    scale: float = 1.0,
    unit: str = "",
    showlegend: bool = True,
    reference: str | None = None,
) -> list[go.Scatter]:
    """The band (two invisible edges, the upper filled down to the lower) and the mean line with markers.

    Figures are built from whole trace lists (go.Figure(data=…), add_traces): one add_trace per trace costs ~4 ms
    of plotly validation each, which is most of a page's time for a dozen groups."""
    grpo = is_baseline(label, reference)
    name = legend_name(label, reference)
    x = frame["step"].to_numpy()
    lo, hi, mean = (frame[c].to_numpy(dtype=float) * scale for c in ("lo", "hi", "mean"))
    edge = dict(mode="lines", line=dict(width=0, color=color), hoverinfo="skip", showlegend=False, legendgroup=label)
    custom = np.column_stack([lo, hi, frame["n"].to_numpy()])
    return [
        go.Scatter(x=x, y=lo, name=f"{label} band low", **edge),
        go.Scatter(x=x, y=hi, name=f"{label} band", fill="tonexty", fillcolor=_rgba(color, 0.18), **edge),
        go.Scatter(
            x=x,
            y=mean,
            name=name,
            legendgroup=label,
            legendrank=1 if grpo else 100,
            showlegend=showlegend,
            mode="lines+markers" if len(x) <= 60 else "lines",
            line=dict(color=color, width=3 if grpo else 2.5, dash="dash" if grpo else "solid"),
            marker=dict(size=6),
            customdata=custom,
            hovertemplate=(
                f"<b>{name}</b><br>step %{{x}}<br>mean %{{y:.3g}}{unit}<br>"
                f"{band_text.removeprefix('band = ')}: %{{customdata[0]:.3g}}–%{{customdata[1]:.3g}}{unit}<br>"
                "runs: %{customdata[2]}<extra></extra>"
            ),
        ),
    ]


def curves_figure(
    banded: pd.DataFrame,
    *,
    title: str,
    subtitle: str,
    x_title: str,
    y_title: str,
    band_text: str,
    percent: bool = False,
    y_range: Sequence[float] | None = None,
    reference: str | None = None,
) -> go.Figure:
    """One metric against step: one line per group (mean over seeds) with its band; the baseline (GRPO, or the
    pinned `reference`) dashed grey and first in the legend."""
    labels = _baseline_first(dict.fromkeys(banded["group"]), reference)
    colors = group_colors(labels, reference)
    scale, unit = (100.0, "%") if percent else (1.0, "")
    traces = [
        trace
        for label in labels
        for trace in band_traces(
            banded[banded["group"] == label],
            label,
            colors[label],
            band_text=band_text,
            scale=scale,
            unit=unit,
            reference=reference,
        )
    ]
    fig = go.Figure(data=traces)
    fig.update_xaxes(title_text=x_title, rangemode="tozero")
    fig.update_yaxes(title_text=y_title, range=list(y_range) if y_range is not None else None)
    return _layout(fig, title, f"{subtitle}; {band_text}")


def panels_figure(
    panels: Sequence[tuple[str, pd.DataFrame]],
    *,
    title: str,
    subtitle: str,
    x_title: str,
    y_title: str,
    band_text: str,
    reference: str | None = None,
) -> go.Figure:
    """Several metrics side by side (e.g. KL on harmful and on harmless prompts), one legend for all."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[name for name, _ in panels], horizontal_spacing=0.08)
    labels = _baseline_first(dict.fromkeys(label for _, frame in panels for label in frame["group"]), reference)
    colors = group_colors(labels, reference)
    traces: list[go.Scatter] = []
    cols: list[int] = []
    shown: set[str] = set()
    for col, (_, frame) in enumerate(panels, start=1):
        for label in _baseline_first(dict.fromkeys(frame["group"]), reference):
            mine = band_traces(
                frame[frame["group"] == label],
                label,
                colors[label],
                band_text=band_text,
                showlegend=label not in shown,
                reference=reference,
            )
            traces += mine
            cols += [col] * len(mine)
            shown.add(label)
        fig.update_xaxes(title_text=x_title, row=1, col=col)
    fig.add_traces(traces, rows=[1] * len(traces), cols=cols)
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    return _layout(fig, title, f"{subtitle}; {band_text}")


def lambda_span(lambs: pd.Series) -> tuple[float, float]:
    """The λ range GRPO's reference lines cover: FRPO's λs, widened around a single λ so the line shows."""
    if lambs.empty:
        return 0.1, 10.0
    low, high = float(lambs.min()), float(lambs.max())
    return (low / 2, high * 2) if low == high else (low, high)


def lambda_figure(
    summary: pd.DataFrame, panels: Sequence[tuple[str, str, str]], *, title: str, subtitle: str
) -> go.Figure:
    """FRPO's λ on a log axis against several per-group numbers; GRPO (λ → ∞) as a dashed horizontal line, one per
    budget if it ran at several, each labelled at its left end.

    `summary` has one row per group with columns `<metric>` and `<metric>_sd`; `panels` is (column, title, y title).
    """
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for _, t, _ in panels], horizontal_spacing=0.08)
    frpo = summary[(summary["method"] == "frpo") & summary["lamb"].notna()].sort_values("lamb")
    grpo = summary[summary["method"] == "grpo"]
    span = lambda_span(frpo["lamb"])
    families = list(dict.fromkeys(frpo["family"]))
    greys = group_colors(list(grpo["group"]))
    traces: list[go.Scatter] = []
    cols: list[int] = []
    for col, (column, _, y_title) in enumerate(panels, start=1):
        for i, family in enumerate(families):  # one line per FRPO family (runs that differ only in λ)
            line = frpo[frpo["family"] == family]
            if line[column].notna().any():
                color = PALETTE[i % len(PALETTE)]
                traces.append(
                    go.Scatter(
                        x=line["lamb"],
                        y=line[column],
                        error_y=dict(type="data", array=line[f"{column}_sd"].fillna(0).to_numpy(), visible=True),
                        mode="lines+markers",
                        marker=dict(size=9, color=color),
                        line=dict(color=color),
                        name=family,
                        legendgroup=family,
                        showlegend=col == 1,
                        hovertemplate=f"{family} λ=%{{x:g}}<br>%{{y:.3g}} (± %{{error_y.array:.2g}} sd over seeds)"
                        "<extra></extra>",
                    )
                )
                cols.append(col)
        for _, row in grpo.iterrows():  # GRPO, the λ → ∞ limit: a level across the λ range, one per budget
            if pd.notna(row[column]):
                level, name = float(row[column]), f"{legend_name(row['group'])}, λ → ∞"
                traces.append(
                    go.Scatter(
                        x=list(span),
                        y=[level, level],
                        mode="lines+text",
                        text=[grpo_tag(row["group"]), ""],
                        textposition="top right",
                        textfont=dict(size=11, color=greys[row["group"]]),
                        line=dict(color=greys[row["group"]], dash="dash", width=2.5),
                        name=name,
                        legendgroup=row["group"],
                        legendrank=1,
                        showlegend=col == 1,
                        hovertemplate=f"{name}: {level:.3g}<extra></extra>",
                    )
                )
                cols.append(col)
        fig.update_xaxes(type="log", title_text="FRPO λ (log scale)", row=1, col=col)
        fig.update_yaxes(title_text=y_title, row=1, col=col)
    fig.add_traces(traces, rows=[1] * len(traces), cols=cols)
    return _layout(fig, title, subtitle, height=HEIGHT)


def grpo_tag(label: str) -> str:
    """What a GRPO reference line is labelled with on the chart: its budget ("steps 40"), or "GRPO"."""
    return label.removeprefix("GRPO (").removesuffix(")") if label.startswith("GRPO (") else label


def bars_figure(
    panels: Sequence[tuple[str, str, pd.DataFrame]],
    bars: Sequence[tuple[str, str]],
    *,
    x: str,
    title: str,
    subtitle: str,
) -> go.Figure:
    """Grouped bars with ± 1 sd error bars, side by side panels sharing one legend: for each (title, y title, frame)
    panel, one bar per row of the frame (labelled by its `x` column) for each (column, legend name) of `bars`. The
    frame has `<column>` and `<column>_sd` for each bar, and `seeds` (shown on hover)."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for t, _, _ in panels], horizontal_spacing=0.08)
    colors = [_rgba(PALETTE[0], 0.4), PALETTE[0], *PALETTE[1:]]
    traces: list[go.Bar] = []
    cols: list[int] = []
    for col, (_, y_title, frame) in enumerate(panels, start=1):
        for i, (column, name) in enumerate(bars):
            traces.append(
                go.Bar(
                    x=frame[x],
                    y=frame[column],
                    error_y=dict(type="data", array=frame[f"{column}_sd"].fillna(0).to_numpy(), visible=True),
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    marker=dict(color=colors[i % len(colors)]),
                    customdata=frame["seeds"],
                    hovertemplate=f"<b>%{{x}}</b>, {name}<br>%{{y:.3g}} ± %{{error_y.array:.2g}} (sd over "
                    "%{customdata} seeds)<extra></extra>",
                )
            )
            cols.append(col)
        fig.update_yaxes(title_text=y_title, row=1, col=col)
    fig.add_traces(traces, rows=[1] * len(traces), cols=cols)
    fig.update_layout(barmode="group")
    return _layout(fig, title, subtitle, height=HEIGHT, legend="measured")


def scatter_figure(
    points: pd.DataFrame,
    *,
    x: str,
    y: str,
    title: str,
    subtitle: str,
    x_title: str,
    y_title: str,
    means: bool = True,
) -> go.Figure:
    """One point per run, coloured by group (GRPO a black ✕), and each group's mean as a large marker."""
    labels = list(dict.fromkeys(points.sort_values("order", kind="stable")["group"]))
    colors = group_colors(labels)
    traces: list[go.Scatter] = []
    for label in labels:
        mine = points[(points["group"] == label) & points[x].notna() & points[y].notna()]
        if mine.empty:
            continue
        grpo = is_baseline(label)
        traces.append(
            go.Scatter(
                x=mine[x],
                y=mine[y],
                mode="markers",
                name=legend_name(label),
                legendgroup=label,
                legendrank=1 if grpo else 100,
                marker=dict(
                    color=colors[label], size=9, opacity=0.55, symbol="x" if grpo else "circle", line=dict(width=0)
                ),
                text=[f"seed {s}" for s in mine["seed"]],
                hovertemplate=f"<b>{legend_name(label)}</b> %{{text}}<br>{x_title}: %{{x:.3g}}<br>"
                f"{y_title}: %{{y:.3g}}<extra></extra>",
            )
        )
        if means:
            traces.append(
                go.Scatter(
                    x=[mine[x].mean()],
                    y=[mine[y].mean()],
                    mode="markers",
                    name=f"{legend_name(label)} mean",
                    legendgroup=label,
                    showlegend=False,
                    marker=dict(
                        color=colors[label],
                        size=18,
                        symbol="x" if grpo else "diamond",
                        line=dict(width=1.5, color="white"),
                    ),
                    hovertemplate=f"<b>{legend_name(label)}</b>, mean over {len(mine)} runs<br>{x_title}: %{{x:.3g}}"
                    f"<br>{y_title}: %{{y:.3g}}<extra></extra>",
                )
            )
    fig = go.Figure(data=traces)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return _layout(fig, title, subtitle)


@dataclass(frozen=True)
class FrontierReference:
    """What the frontier chart is read against: the loss type whose budgets trace the frontier (its `method` tag and
    the name a person reads), and the point pinned as the reference, if any ((label, KL moved, measure))."""

    method: str = "grpo"
    name: str = "GRPO"
    pinned: tuple[str, float, float] | None = None


def frontier_figure(
    points: pd.DataFrame,
    means: pd.DataFrame,
    curve: Sequence[tuple[float, float]],
    *,
    title: str,
    subtitle: str,
    x_title: str,
    y_title: str,
    baseline: FrontierReference = FrontierReference(),
) -> go.Figure:
    """Robustness against KL moved: the baseline's runs faint (✕) with its budget means, its frontier (`curve`,
    dashed), and every other setting's mean with error bars of ± 1 sd over seeds in both KL and the measure, its runs
    faint; the pinned reference a star on dotted cross-hairs. KL beyond the frontier's ends is shaded: the baseline
    has no budget there to compare with.

    `points`: one row per run (`dashboard.frontier.points_frame`); `means`: one per setting (`setting_means`)."""
    others = [s for s, method in zip(means["setting"], means["method"], strict=True) if method != baseline.method]
    colors = {setting: PALETTE[i % len(PALETTE)] for i, setting in enumerate(others)}
    traces: list[go.Scatter] = [_frontier_line(curve, y_title, baseline.name)] if len(curve) >= 2 else []
    first_baseline = True  # the baseline's budgets share two legend entries: its runs, and its budget means
    for setting in means["setting"]:
        mean = means[means["setting"] == setting].iloc[0]
        of_baseline = mean["method"] == baseline.method
        style = _FrontierStyle(
            color=GRPO_COLOR if of_baseline else colors[setting],
            group=baseline.name if of_baseline else setting,
            baseline=baseline.name if of_baseline else None,
            first=first_baseline,
        )
        traces.append(_frontier_runs(points[points["setting"] == setting], setting, style, y_title))
        traces.append(_frontier_mean(mean, setting, style, y_title))
        first_baseline = first_baseline and not of_baseline
    if baseline.pinned is not None:
        traces.append(_pinned_point(*baseline.pinned, y_title))
    fig = go.Figure(data=traces)
    _shade_outside(fig, [*points["kl_moved"], *(x for x, _ in curve)], curve, baseline.name)
    if baseline.pinned is not None:  # cross-hairs: above and left of them is more robust at less KL
        _, kl, value = baseline.pinned
        fig.add_vline(x=kl, line=dict(color=REFERENCE_COLOR, width=1, dash="dot"))
        fig.add_hline(y=value, line=dict(color=REFERENCE_COLOR, width=1, dash="dot"))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return _layout(fig, title, subtitle, height=520, legend="setting")


@dataclass(frozen=True)
class _FrontierStyle:
    """How one setting's traces look and share the legend: the baseline's budgets show one legend entry for all."""

    color: str
    group: str
    baseline: str | None  # the baseline's name where this setting is one of its budgets
    first: bool  # the first baseline budget drawn: the one whose traces carry the baseline's legend entries


def _frontier_line(curve: Sequence[tuple[float, float]], y_title: str, name: str) -> go.Scatter:
    """The baseline's frontier (its monotone fit through every run of it), dashed, under everything else."""
    return go.Scatter(
        x=[x for x, _ in curve],
        y=[y for _, y in curve],
        mode="lines",
        name=f"{name} frontier (best over its budgets)",
        legendgroup=name,
        legendrank=0,
        line=dict(color=GRPO_COLOR, width=3, dash="dash"),
        hovertemplate=f"{name} frontier<br>KL moved: %{{x:.3g}}<br>{y_title}: %{{y:.3g}}<extra></extra>",
    )


def _pinned_point(label: str, kl: float, value: float, y_title: str) -> go.Scatter:
    """The pinned reference: a large hollow star, first in the legend."""
    return go.Scatter(
        x=[kl],
        y=[value],
        mode="markers",
        name=f"{label} (reference)",
        legendrank=0,
        marker=dict(symbol="star-open", size=24, color=REFERENCE_COLOR, line=dict(width=2.5)),
        hovertemplate=f"<b>{label}</b> (reference)<br>KL moved: %{{x:.3g}}<br>{y_title}: %{{y:.3g}}<extra></extra>",
    )


def _frontier_runs(runs: pd.DataFrame, setting: str, style: _FrontierStyle, y_title: str) -> go.Scatter:
    """One setting's runs, one faint marker per seed, each naming its RL and fine-tuning runs on hover."""
    hover = (
        "<b>%{customdata[0]}</b>, seed %{customdata[1]}<br>RL run %{customdata[2]} → fine-tuning %{customdata[3]}"
        f"<br>budget: %{{customdata[4]}}<br>KL moved: %{{x:.3g}}<br>{y_title}: %{{y:.3g}}<extra></extra>"
    )
    custom = np.column_stack(
        [runs["setting"], runs["seed"], runs["rl_run"].str[:8], runs["finetune_run"].str[:8], runs["budget"]]
    )
    return go.Scatter(
        x=runs["kl_moved"],
        y=runs["value"],
        mode="markers",
        name=f"{style.baseline} runs (one per seed)" if style.baseline else f"{setting} runs",
        legendgroup=style.group,
        showlegend=bool(style.baseline) and style.first,
        legendrank=2 if style.baseline else 100,
        marker=dict(color=style.color, size=9, opacity=0.35, symbol="x" if style.baseline else "circle"),
        customdata=custom,
        hovertemplate=hover,
    )


def _frontier_mean(mean: pd.Series, setting: str, style: _FrontierStyle, y_title: str) -> go.Scatter:
    """One setting's mean over seeds: a baseline budget labelled on the plot, any other setting with ± 1 sd bars."""
    grpo = style.baseline is not None
    spread = f"mean over {mean['seeds']} seeds (± 1 sd)"
    return go.Scatter(
        x=[mean["kl_moved"]],
        y=[mean["value"]],
        mode="markers+text" if grpo else "markers",
        text=[setting.removeprefix(f"{style.baseline} (").removesuffix(")")] if grpo else None,
        textposition="bottom right",
        name=f"{style.baseline} budgets (mean over seeds)" if grpo else setting,
        legendgroup=style.group,
        showlegend=not grpo or style.first,
        legendrank=1 if grpo else 100,
        error_x=None if grpo else dict(type="data", array=[mean["kl_moved_sd"]], visible=True),
        error_y=None if grpo else dict(type="data", array=[mean["value_sd"]], visible=True),
        marker=dict(
            color=style.color, size=14 if grpo else 15, symbol="x" if grpo else "diamond", line=dict(width=1.5)
        ),
        hovertemplate=f"<b>{setting}</b>, {spread}<br>KL moved: %{{x:.3g}} ± {mean['kl_moved_sd']:.2g}<br>"
        f"{y_title}: %{{y:.3g}} ± {mean['value_sd']:.2g}<extra></extra>",
    )


def _shade_outside(fig: go.Figure, xs: Sequence[float], hull: Sequence[tuple[float, float]], name: str) -> None:
    """Fix the KL axis to the points (padded) and shade it beyond the frontier's ends, naming the region where
    there is room for the words: there the baseline (`name`) has no budget to compare with."""
    if not xs:
        return
    pad = 0.08 * ((max(xs) - min(xs)) or abs(max(xs)) or 1.0)
    left, right = min(xs) - pad, max(xs) + pad
    if min(xs) >= 0:
        left = max(left, 0.0)
    fig.update_xaxes(range=[left, right])
    for x0, x1 in ((left, hull[0][0]), (hull[-1][0], right)) if hull else ():
        if x1 - x0 > 1e-9:
            named = dict(
                annotation_text=f"outside {name}'s range",
                annotation_position="top left" if x0 == left else "top right",
                annotation_font=dict(size=12, color="#616161"),
            )
            wide = x1 - x0 > 0.12 * (right - left)
            shade = dict(fillcolor="#9e9e9e", opacity=0.12, line_width=0, layer="below")
            fig.add_vrect(x0=x0, x1=x1, **shade, **(named if wide else {}))


def run_curves_figure(
    series: Mapping[str, Mapping[str, Any]], panels: Sequence[tuple[str, Sequence[str]]], *, title: str
) -> go.Figure:
    """One run's training curves: a grid of panels, each with the keys it names (as logged, by step)."""
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[name for name, _ in panels], vertical_spacing=0.12)
    traces: list[go.Scatter] = []
    where: list[tuple[int, int]] = []
    for i, (_, keys) in enumerate(panels):
        row, col = i // cols + 1, i % cols + 1
        for key in keys:
            data = series.get(key) or {}
            steps = data.get("steps", [])
            traces.append(
                go.Scatter(
                    x=steps,
                    y=data.get("values", []),
                    mode="lines+markers" if len(steps) <= 60 else "lines",
                    name=key,
                    line=dict(color=PALETTE[len(traces) % len(PALETTE)]),
                    hovertemplate=f"{key}<br>step %{{x}}: %{{y:.4g}}<extra></extra>",
                )
            )
            where.append((row, col))
        fig.update_xaxes(title_text="step", row=row, col=col)
    fig.add_traces(traces, rows=[r for r, _ in where], cols=[c for _, c in where])
    subtitle = "each series as logged (downsampled by the API for long runs)"
    return _layout(fig, title, subtitle, height=300 * rows + 100, legend="series")


def loading_figure(title: str, *, x_title: str, y_title: str, y_range: Sequence[float] | None = None) -> go.Figure:
    """The frame of a chart whose data is still being read: its title and axes, and a note saying so."""
    fig = go.Figure()
    fig.add_annotation(text="reading the runs from the API…", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(title_text=x_title, range=[0, 1], showticklabels=False)
    fig.update_yaxes(title_text=y_title, range=list(y_range) if y_range is not None else None)
    return _layout(fig, title, "loading")


def metric_runs_figure(
    frame: pd.DataFrame, *, title: str, subtitle: str, x_title: str, y_title: str, reference: str | None = None
) -> go.Figure:
    """One metric across runs: a line per run (columns run, label, x, y, and raw: the unsmoothed value), the raw
    series faint behind a smoothed one, the pinned `reference` run dashed grey and first in the legend."""
    runs = list(dict.fromkeys(frame["run"]))
    runs.sort(key=lambda run: run != reference)
    traces: list[go.Scatter] = []
    others = 0
    for run in runs:
        mine = frame[frame["run"] == run]
        label = str(mine["label"].iloc[0])
        pinned = run == reference
        color = GRPO_COLOR if pinned else PALETTE[others % len(PALETTE)]
        others += not pinned
        name = f"{label} (reference)" if pinned else label
        if not mine["raw"].equals(mine["y"]):
            traces.append(
                go.Scatter(
                    x=mine["x"],
                    y=mine["raw"],
                    mode="lines",
                    line=dict(color=color, width=1),
                    opacity=0.25,
                    legendgroup=run,
                    showlegend=False,
                    hoverinfo="skip",
                    name=f"{name} raw",
                )  # fmt: skip
            )
        traces.append(
            go.Scatter(
                x=mine["x"],
                y=mine["y"],
                mode="lines+markers" if len(mine) <= 60 else "lines",
                name=name,
                legendgroup=run,
                legendrank=1 if pinned else 100,
                line=dict(color=color, width=3 if pinned else 2, dash="dash" if pinned else "solid"),
                hovertemplate=f"<b>{name}</b><br>{x_title} %{{x:.4g}}<br>%{{y:.4g}}<extra></extra>",
            )
        )
    fig = go.Figure(data=traces)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return _layout(fig, title, subtitle, legend="run")
