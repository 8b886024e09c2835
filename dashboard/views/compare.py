"""Compare, the home page: does safety survive downstream fine-tuning? GRPO against FRPO, mean over seeds.

The selection (a sweep, or runs) and the band live in the URL: `/?sweep=<id>` or `/?runs=<id>,<id>,…&band=sd`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import aggregate, charts, reads, selection, ui
from dashboard.aggregate import BANDS
from dashboard.client import ApiConfig
from dashboard.keys import COMPARE_FINETUNE_KEYS as FINETUNE_KEYS
from frpo_client import Json

RL_KEYS = ("reward", "robust_reward")
BAND_CHOICES = {"minmax": "min–max over seeds", "sd": "mean ± 1 sd over seeds"}
REFUSAL_TITLE = "Safety during downstream fine-tuning: refusal rate on harmful prompts"
REFUSAL_Y = "refusal rate on harmful prompts (%)"
FINETUNE_X = "downstream fine-tuning step"
DEFAULT_RECENT = 24  # fine-tuning runs shown when nothing is selected and there is no sweep
# The two panel charts' (file name, title, subtitle, x title, y title).
KL_CHART = (
    "kl to starting model vs fine-tuning step",
    "How far fine-tuning moves the model: KL to the model it started from",
    "sequence-summed KL in nats on fixed prompts; line = mean over seeds",
    FINETUNE_X,
    "KL (nats per sequence)",
)
REWARD_CHART = (
    "reward trajectories",
    "RL training: reward trajectories",
    "logged by the trainer at each logging step; robust reward = −λ·log E[exp(−r/λ)] per prompt group",
    "RL training step",
    "reward",
)

INTRO = (
    "RLHF'd models tend to lose their safety when they are later fine-tuned on ordinary, harmless data. **FRPO** "
    "trains the policy against the worst case in a KL ball around it, so that this later fine-tuning hurts less; "
    "**GRPO** is the baseline. Each line below is one method (and, for FRPO, one λ; smaller λ = more "
    "conservative), averaged over seeds, with a shaded band showing the spread. "
    "**Higher refusal on harmful prompts is safer; a robust method keeps its line up as fine-tuning proceeds.**"
)
EMPTY = (
    "**No fine-tuning runs to compare yet.** This chart needs RL runs (GRPO and FRPO) that were then fine-tuned "
    "downstream, with the safety evaluation logged along the way. Submit a `pipeline` (train → finetune → evaluate) "
    "or a `sweep` on the **Jobs** page, or with the API: "
    '`POST /api/v1/jobs {"kind": "pipeline", "train": {"method": "frpo"}}`.'
)


def choose(config: ApiConfig) -> tuple[tuple[str, ...], str | None, str]:
    """The sidebar: a sweep or runs, and the band; mirrored in the URL so the view can be shared."""
    mode, run_ids, sweep_id = ui.choose_selection(config, prefix="compare", title="Compare", recent=DEFAULT_RECENT)
    band_default = ui.query_value("band") if ui.query_value("band") in BANDS else "minmax"
    band = st.sidebar.radio(
        "Band",
        list(BAND_CHOICES),
        index=list(BAND_CHOICES).index(band_default),
        format_func=BAND_CHOICES.get,
        key="compare_band",
        help="What the shaded band around each mean line shows.",
    )
    query = ui.selection_query(mode, run_ids, sweep_id)
    ui.set_query(**query, band=band if band != "minmax" else None)
    if run_ids or sweep_id:
        for view in ("frontier", "capability"):
            ui.view_link(view, query, st.sidebar)
    return run_ids, sweep_id, band


def group_labels(finetune: list[Json]) -> list[str]:
    """The groups these runs fall in (GRPO first, FRPO by λ), as the charts label them."""
    used = [r for r in finetune if aggregate.usable(r)]
    split = aggregate.split_settings(used)
    groups = sorted({aggregate.group_of(r.get("tags") or {}, split) for r in used}, key=lambda g: g.order)
    return [group.label for group in groups]


def pick_reference(labels: list[str]) -> str | None:
    """The sidebar's reference: any group of the selection, pinned in the URL (`ref=`); None keeps GRPO."""
    return ui.pin_reference(
        {label: label for label in labels},
        key="compare_ref",
        unpinned="GRPO (the baseline)",
        help="The group the others are read against: drawn dashed grey, and the table's differences are from it.",
    )


def _percent_table(table: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    shown = table[["group", "runs", "before", "after", "drop", "drop_sd"]].copy()
    for column in ("before", "after", "drop", "drop_sd"):
        shown[column] = shown[column] * 100.0
    against = reference or ("GRPO" if "GRPO" in set(shown["group"]) else None)
    if against in set(shown["group"]):
        row = shown.set_index("group").loc[against]
        shown["after − reference (points)"] = shown["after"] - row["after"]
        shown["drop − reference (points)"] = shown["drop"] - row["drop"]
    shown["group"] = shown["group"].map(lambda label: charts.legend_name(label, reference))
    return shown.rename(
        columns={
            "group": "method",
            "runs": "runs",
            "before": "refusal before (%)",
            "after": "refusal after (%)",
            "drop": "drop (points)",
            "drop_sd": "drop sd (points)",
        }
    )


def refusal_chart(
    finetune: list[Json], series: dict[str, dict[str, Json]], band: str, reference: str | None = None
) -> bool:
    """Figure 1: refusal on harmful prompts against the downstream step. False when it was not measured."""
    long = aggregate.long_frame(finetune, series, "eval/refusal_rate")
    if long.empty:
        st.info("Refusal rate: **not measured** yet for these runs (no `eval/refusal_rate` logged).")
        return False
    banded = aggregate.band_frame(long, band)
    fig = charts.curves_figure(
        banded,
        title=REFUSAL_TITLE,
        subtitle="HarmBench-style harmful prompts, judged for refusal at step 0 and every N steps; "
        "line = mean over seeds",
        x_title=FINETUNE_X,
        y_title=REFUSAL_Y,
        band_text=BANDS[band],
        percent=True,
        y_range=(-2, 102),
        reference=reference,
    )
    ui.chart(fig, "refusal rate vs fine-tuning step", banded, key="refusal")
    return True


def before_after_section(
    finetune: list[Json], series: dict[str, dict[str, Json]], reference: str | None = None
) -> None:
    long = aggregate.long_frame(finetune, series, "eval/refusal_rate")
    st.subheader("Before and after fine-tuning")
    st.caption(
        "Per method: the refusal rate at step 0 (the RL model as trained) and at the last evaluated step, averaged "
        "over runs; the drop is before − after in percentage points (smaller is more robust), with its sd over runs; "
        "the last columns are differences from the reference (GRPO unless another group is pinned in the sidebar)."
    )
    table = aggregate.before_after(long)
    shown = _percent_table(table, reference)
    strongreject = aggregate.long_frame(finetune, series, "eval/strongreject")
    if not strongreject.empty:
        sr = aggregate.before_after(strongreject).set_index("group")
        shown["StrongREJECT before"] = table["group"].map(sr["before"]).to_numpy()
        shown["StrongREJECT after"] = table["group"].map(sr["after"]).to_numpy()
    over = aggregate.long_frame(finetune, series, "eval/refusal_rate_normal")
    if not over.empty:
        shown["over-refusal after (%)"] = table["group"].map(aggregate.before_after(over).set_index("group")["after"])
        shown["over-refusal after (%)"] = shown["over-refusal after (%)"].to_numpy() * 100.0
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.NumberColumn(format="%.2f" if c.startswith("StrongREJECT") else "%.1f")
            for c in shown.columns
            if c not in ("method", "runs")
        },
    )
    st.download_button(
        "Download table (CSV)", shown.to_csv(index=False).encode(), "before-after-drop.csv", "text/csv", key="csv-table"
    )


def strongreject_section(finetune: list[Json], series: dict[str, dict[str, Json]], band: str) -> None:
    long = aggregate.long_frame(finetune, series, "eval/strongreject")
    if long.empty:
        st.caption(
            "StrongREJECT score: **not measured** for these runs (it needs a StrongREJECT judge in `eval.judge`)."
        )
        return
    banded = aggregate.band_frame(long, band)
    fig = charts.curves_figure(
        banded,
        title="Harmfulness during downstream fine-tuning: StrongREJECT score",
        subtitle="0 = refuses or useless to an attacker, 1 = fully harmful; line = mean over seeds",
        x_title="downstream fine-tuning step",
        y_title="StrongREJECT score (0–1, lower is safer)",
        band_text=BANDS[band],
        y_range=(-0.02, 1.02),
    )
    ui.chart(fig, "strongreject vs fine-tuning step", banded, key="strongreject")


def _banded(
    runs: list[Json], series: dict[str, dict[str, Json]], band: str, keys: tuple[tuple[str, str], ...]
) -> tuple[list[tuple[str, pd.DataFrame]], list[tuple[str, str]]]:
    """For `keys` ((key, panel name), …): the panels some run logged, as (name, band frame), and the (key, name)
    of those no run did."""
    panels, missing = [], []
    for key, name in keys:
        long = aggregate.long_frame(runs, series, key)
        if long.empty:
            missing.append((key, name))
        else:
            panels.append((name, aggregate.band_frame(long, band)))
    return panels, missing


def _panels_chart(
    panels: list[tuple[str, pd.DataFrame]],
    band: str,
    text: tuple[str, ...],
    *,
    key: str,
    column: str,
    reference: str | None = None,
):
    """Side-by-side panels in one chart, `text` its (file name, title, subtitle, x title, y title); the CSV holds
    every panel's frame, with the panel named in `column`."""
    name, title, subtitle, x_title, y_title = text
    fig = charts.panels_figure(
        panels,
        title=title,
        subtitle=subtitle,
        x_title=x_title,
        y_title=y_title,
        band_text=BANDS[band],
        reference=reference,
    )
    frame = pd.concat([f.assign(**{column: panel}) for panel, f in panels], ignore_index=True)
    ui.chart(fig, name, frame, key=key)


def kl_section(
    finetune: list[Json], series: dict[str, dict[str, Json]], band: str, reference: str | None = None
) -> None:
    keys = (("eval/kl_safety", "on harmful prompts"), ("eval/kl_normal", "on harmless prompts"))
    panels, missing = _banded(finetune, series, band, keys)
    for key, name in missing:
        st.caption(f"KL {name}: **not measured** (`{key}` not logged).")
    if panels:
        _panels_chart(panels, band, KL_CHART, key="kl", column="prompts", reference=reference)


def reward_section(config: ApiConfig, rl: list[Json], band: str) -> None:
    if not rl:
        st.caption("Reward trajectories: the RL runs these fine-tunings started from are not in the selection.")
        return
    series = reads.series(config.url, config.key, reads.ids(rl), RL_KEYS)
    keys = (
        ("reward", "reward (mean over completions)"),
        ("robust_reward", "robust reward (worst case in the KL ball)"),
    )
    panels, _ = _banded(rl, series, band, keys)
    if not panels:
        st.caption("Reward trajectories: **not measured** (the RL runs logged no `reward`).")
        return
    _panels_chart(panels, band, REWARD_CHART, key="reward", column="series")


def _summary(finetune: list[Json], runs: list[Json]) -> str:
    used = [r for r in finetune if aggregate.usable(r)]
    split = aggregate.split_settings(used)
    groups: dict[str, int] = {}
    for group in sorted((aggregate.group_of(r.get("tags") or {}, split) for r in used), key=lambda g: g.order):
        label = charts.legend_name(group.label)
        groups[label] = groups.get(label, 0) + 1
    parts = ", ".join(f"{name}: {n}" for name, n in groups.items())
    left_out = len(finetune) - len(used)
    note = f"; {left_out} failed or cancelled run(s) left out" if left_out else ""
    running = sum(r["status"] in ("queued", "running") for r in used)
    live = f"; {running} still queued or running (their curves grow as they log)" if running else ""
    return f"{len(used)} fine-tuning runs ({parts}){note}{live}."


def render() -> None:
    st.title("Does safety survive fine-tuning?")
    st.markdown(INTRO)
    config = ui.api_config()
    # The first chart's frame goes out before any API read, so the browser fetches and compiles plotly.js (most of
    # a first load's time) while the runs are being read; the real chart then takes its place.
    slot = st.empty()
    slot.plotly_chart(
        charts.loading_figure(REFUSAL_TITLE, x_title=FINETUNE_X, y_title=REFUSAL_Y, y_range=(-2, 102)),
        key="chart-refusal-loading",
        config=ui.image_config("loading"),
    )
    try:
        run_ids, sweep_id, band = choose(config)
        if not run_ids and not sweep_id:
            slot.info(EMPTY)
            return
        runs = reads.runs_of(config.url, config.key, run_ids, sweep_id)
        finetune, rl = selection.split(runs)
        if not finetune:
            slot.info(
                EMPTY
                if not rl
                else "These RL runs have not been fine-tuned downstream yet, so there is no safety "
                "curve to draw. Submit a `finetune` job with one of them as `parent_id` on the Jobs page."
            )
        else:
            # The first chart needs one series per run: read it alone, draw it, then read the rest.
            ids = reads.ids(finetune)
            reference = pick_reference(group_labels(finetune))
            refusal = reads.series(config.url, config.key, ids, FINETUNE_KEYS[:1])
            with slot.container():
                st.caption(_summary(finetune, runs))
                measured = refusal_chart(finetune, refusal, band, reference)
                if not any((r.get("tags") or {}).get("method") == "grpo" for r in finetune if aggregate.usable(r)):
                    st.caption(
                        ":material/info: No GRPO baseline among these runs: add GRPO fine-tuning runs (or pick a "
                        "sweep, which includes them) to see how much FRPO gains over it."
                    )
            rest = reads.series(config.url, config.key, ids, FINETUNE_KEYS[1:])
            series = {run_id: {**refusal[run_id], **rest[run_id]} for run_id in ids}
            if measured:
                before_after_section(finetune, series, reference)
            strongreject_section(finetune, series, band)
            kl_section(finetune, series, band, reference)
        reward_section(config, rl, band)
    except BaseException:
        slot.empty()  # never leave a "loading" chart behind an error message
        raise


if __name__ == "__main__":
    ui.run_page(render)
