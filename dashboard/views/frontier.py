"""Frontier: is FRPO more robust, or did it only train harder? Robustness after downstream fine-tuning against the KL
each RL run moved, GRPO's budgets tracing a frontier, and a verdict per FRPO λ (docs/method.md §7).

The selection, the measure, the baseline whose budgets trace the frontier and a pinned reference point (a setting or
a run) live in the URL: `/frontier?sweep=<id>&measure=drop&baseline=dr_grpo&ref=FRPO λ=0.5` or
`/frontier?runs=<id>,…`. The numbers are `analysis.pipelines` and `analysis.verdict`'s, the ones `frpo demo` prints.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.frontier import MEASURES, Measure
from analysis.pipelines import method_name
from analysis.verdict import Comparison, compare
from dashboard import charts, reads, selection, ui
from dashboard import frontier as fr
from dashboard.client import ApiConfig

INTRO = (
    "A run that moves further from its starting model during RL also tends to keep more of its safety after "
    "downstream fine-tuning, so comparing GRPO and FRPO at equal steps cannot tell *more robust* from *trained "
    "harder*. Here each point is one pipeline (an RL run and the fine-tuning run that started from it): **x** is the "
    "KL the RL run moved from its starting model (its last `eval/kl_safety`), **y** the robustness measured after "
    "fine-tuning. GRPO at several budgets (steps, β, learning rate) traces a **frontier**, the best it reaches at "
    "each KL; **FRPO is more robust only where it lies above that frontier at the KL it moved.**"
)
NO_PIPELINES = (
    "**No finished pipelines here yet.** This view needs RL runs (GRPO and FRPO) that were then fine-tuned "
    "downstream: a `pipeline` or a pipeline `sweep` (see the **Jobs** page). Its points appear as the fine-tuning "
    "runs succeed."
)
NO_KL = (
    "**The KL moved during RL was not measured.** None of these RL runs logged `eval/kl_safety`, the KL from the "
    'model it started from: RL runs need `eval` set in their spec (e.g. `"eval": {"every": 20}`; the presets '
    "`toy-safety`, `toy-frontier` and the paper's set it). Without it there is no x axis to compare on."
)
NO_GRPO = (
    "**No {name} budgets to trace a frontier with.** FRPO is judged against a baseline trained to several budgets; "
    'give the sweep a `grpo_budgets` option (e.g. `"grpo_budgets": {{"checkpoints": [60, 120, 180], "beta": [0.05, '
    "0]}}`: one run of each of the sweep's `baselines`, GRPO by default, per β × seed, fine-tuned from its checkpoint "
    "at each step; or `max_steps`, `learning_rate`, `scale_rewards`), or start from the `toy-frontier` preset (the "
    "paper's setting: `safety-frontier-mistral-7b`)."
)
ONE_BUDGET = (
    "**Only one {name} budget ({budget}):** a single point, not a frontier, so only a setting that moved exactly "
    'its KL can be judged. Give {name} more budgets with the sweep\'s `grpo_budgets` option (e.g. `{{"max_steps": '
    "[60, 120, 180]}}`; with `baselines` it applies to each) or the `toy-frontier` preset."
)
KINDS = {  # icon per kind of verdict
    "more robust": ":material/arrow_upward:",
    "not more robust": ":material/drag_handle:",
    "inconclusive": ":material/help:",
    "beyond reach": ":material/block:",
}


def choose(config: ApiConfig) -> tuple[tuple[str, ...], str | None, Measure, dict[str, str | None]]:
    """The sidebar: a sweep or runs, and the measure; mirrored in the URL. Also returns the selection's URL
    parameters, for the links to the other views of it."""
    mode, run_ids, sweep_id = ui.choose_selection(config, prefix="frontier", title="Frontier of")
    default = fr.measure_named(ui.query_value("measure")).name
    name = st.sidebar.selectbox(
        "Robustness measure (y)",
        list(MEASURES),
        index=list(MEASURES).index(default),
        format_func=lambda m: MEASURES[m].label,
        key="frontier_measure",
        help="Measured on the fine-tuning run: its last evaluation (the drop: its first minus its last). Lower is "
        "more robust for the drop and the StrongREJECT score; the verdicts take the direction into account.",
    )
    query = ui.selection_query(mode, run_ids, sweep_id)
    ui.set_query(**query, measure=name if name != fr.DEFAULT_MEASURE else None)
    return run_ids, sweep_id, MEASURES[name], query


def pick_baseline(pipelines: list[fr.Pipeline]) -> str:
    """The sidebar's choice of the loss type whose budgets trace the frontier, among those the selection ran
    (`baseline=` in the URL; GRPO, the default, is left out of it). No choice to offer with fewer than two."""
    options = fr.baselines(pipelines)
    default = fr.default_baseline(pipelines)
    wanted = ui.query_value("baseline")
    chosen = default
    if len(options) > 1:
        chosen = st.sidebar.selectbox(
            "Frontier traced by",
            options,
            index=options.index(wanted if wanted in options else default),
            format_func=method_name,
            key="frontier_baseline",
            help="The baseline trained to several budgets whose best robustness at each KL is the frontier; the "
            "other baselines become settings judged against it, as FRPO's are.",
        )
    ui.set_query(baseline=chosen if chosen != default else None)
    return chosen


def pick_reference(points: pd.DataFrame) -> fr.Pinned | None:
    """The sidebar's pinned reference point (`ref=` in the URL, as on Compare): a setting's mean or one run."""
    ref = ui.pin_reference(
        fr.reference_options(points),
        key="frontier_ref",
        unpinned="none (the frontier alone)",
        help="Marked with a star on dotted cross-hairs; a table gives each setting's KL and robustness against it.",
    )
    return fr.pinned_point(points, ref)


@st.cache_data(ttl=reads.SERIES_TTL, show_spinner=False)
def _compare(grpo: tuple, frpo: tuple, measure: str, reference: str) -> Comparison:
    """`analysis.verdict.compare`, kept across reruns with the same numbers."""
    return compare(dict(grpo), dict(frpo), measure=measure, reference=reference)


def frontier_for(pipelines: list[fr.Pipeline], measure: Measure, baseline: str = "grpo") -> Comparison | None:
    """The baseline's frontier and a verdict per other setting (`analysis.verdict.compare`, cached); None without
    the baseline's points."""
    frontier, others = fr.compare_points(pipelines, measure.name, baseline)
    if not frontier:
        return None
    frozen = [tuple((setting, tuple(seeds)) for setting, seeds in points.items()) for points in (frontier, others)]
    return _compare(*frozen, measure.name, method_name(baseline))


def axis_title(measure: Measure) -> str:
    return f"{measure.label} ({'higher' if measure.higher_is_better else 'lower'} is more robust)"


def chart(
    points: pd.DataFrame, frontier: Comparison | None, measure: Measure, baseline: str, pinned: fr.Pinned | None
) -> None:
    means = fr.setting_means(points)
    curve = frontier.curve if frontier else []
    name = method_name(baseline)
    star = "; ☆ = the pinned reference" if pinned else ""
    fig = charts.frontier_figure(
        points,
        means,
        curve,
        title="Is FRPO more robust, or did it only train harder?",
        subtitle=f"x: KL the RL run moved; y: {measure.label}; faint = runs, large = mean per setting "
        f"(± 1 sd over seeds); dashed = {name}'s frontier (a monotone fit through its runs){star}",
        x_title="KL moved during RL (nats per sequence, from the model RL started from)",
        y_title=axis_title(measure),
        baseline=charts.FrontierReference(baseline, name, (pinned.label, pinned.kl, pinned.value) if pinned else None),
    )
    ui.chart(
        fig,
        f"frontier {measure.name}",
        fr.export_frame(points, frontier, measure, baseline, pinned),
        key="frontier",
        note=f"The CSV holds every run's point, each setting's mean and {name}'s frontier"
        + (", and the pinned reference." if pinned else "."),
    )


def reference_table(points: pd.DataFrame, pinned: fr.Pinned, measure: Measure) -> None:
    """Each setting against the pinned point: how much further it moved, and how much more robust it is."""
    st.subheader(f"Against the reference: {pinned.label}")
    st.caption(
        f"Each setting's mean over seeds minus the reference's (KL moved {pinned.kl:.3g}, {measure.label} "
        f"{pinned.value:.3g}); robustness is signed so that positive is more robust. Unlike the verdicts, this is "
        "the raw difference at unequal KL: a setting that moved further may be more robust only because it "
        "trained harder."
    )
    table = fr.against_reference(points, pinned, measure)
    numbers = {c: st.column_config.NumberColumn(format="%.3g") for c in table.columns if c not in ("setting", "seeds")}
    ui.table(table, f"frontier against {pinned.label}", key="frontier-reference", column_config=numbers)


def verdicts(frontier: Comparison, name: str = "GRPO") -> None:
    """The verdict per setting against `name`'s frontier: the sentences, then the numbers (and their CSV)."""
    st.subheader("Verdict per λ")
    if not frontier.verdicts:
        st.info(f"No FRPO runs here to hold against {name}'s frontier (or none that measured both numbers).")
        return
    st.caption(
        f"Δ is a setting's {frontier.measure.label} minus {name}'s frontier at the KL each of its seeds moved, "
        f"averaged over its seeds inside {name}'s KL range (positive = more robust); the frontier is a monotone fit "
        f"through every {name} run, never extrapolated. The {frontier.level:.0%} interval is a t interval over seeds "
        "that includes the frontier's own noise; each claim is a one-sided test at "
        f"{(1 - frontier.level) / 2:.1%}, Holm-corrected across the λ compared. The label comes last: "
        f"**more robust**, **not more robust by at least {frontier.margin:g}**, **inconclusive** (with the effect "
        f"these seeds could detect at 80% power) or **beyond {name}'s reach** (most seeds moved a KL outside "
        f"{name}'s)."
    )
    for verdict in frontier.verdicts:
        st.markdown(f"{KINDS[verdict.kind]} {verdict.sentence}")
    table = fr.verdict_frame(frontier)
    shown = table.drop(columns="verdict")  # the sentences are above; the CSV keeps them
    numbers = {c: st.column_config.NumberColumn(format="%.3g") for c in shown.columns if c not in ("setting", "label")}
    st.dataframe(shown, hide_index=True, width="stretch", column_config=numbers)
    st.download_button(
        "Download verdicts (CSV)",
        table.to_csv(index=False).encode(),
        f"frontier-verdicts-{frontier.measure.name}.csv",
        "text/csv",
        key="csv-verdicts",
        icon=":material/download:",
    )


def _left_out(gathered: fr.Gathered) -> str:
    if not gathered.left_out:
        return ""
    parts = ", ".join(f"{n} {reason}" for reason, n in gathered.left_out.items())
    return f" Fine-tuning runs left out: {parts} (only finished pipelines have an after)."


def render() -> None:
    st.title("Robustness against the KL moved in RL")
    st.markdown(INTRO)
    config = ui.api_config()
    run_ids, sweep_id, measure, query = choose(config)
    links = {k: v for k, v in query.items() if v}
    left, right = st.columns(2)
    left.page_link(
        "views/compare.py", label="The same runs on Compare", icon=":material/show_chart:", query_params=links
    )
    if sweep_id:
        right.page_link("views/sweep.py", label="This sweep on Sweep", icon=":material/tune:", query_params=links)
    if not run_ids and not sweep_id:
        st.info(NO_PIPELINES)
        return
    runs = reads.runs_of(config.url, config.key, run_ids, sweep_id)
    finetune, rl = selection.split(runs)
    ft_series = reads.series(config.url, config.key, reads.ids(finetune), fr.FINETUNE_KEYS)
    rl_series = reads.series(config.url, config.key, reads.ids(rl), fr.RL_KEYS)
    gathered = fr.gather(finetune, rl, ft_series, rl_series)
    pipelines = gathered.pipelines
    st.caption(f"{len(pipelines)} finished pipelines (RL → fine-tuning) in this selection.{_left_out(gathered)}")
    if not pipelines:
        st.info(NO_PIPELINES)
        return
    measured = gathered.with_kl()
    if not measured:
        st.info(NO_KL)
        return
    if len(measured) < len(pipelines):
        st.caption(
            f":material/info: {len(pipelines) - len(measured)} RL run(s) logged no `eval/kl_safety` (no `eval` in "
            "their spec): their pipelines are left out."
        )
    baseline = pick_baseline(measured)
    points = fr.points_frame(measured, measure.name, baseline)
    if points.empty:
        key = fr.MEASURE_KEYS[measure.name]
        st.info(
            f"**{measure.label.capitalize()}: not measured** for these runs (their fine-tuning runs logged no "
            f"`{key}`). Pick another measure in the sidebar."
        )
        return
    pinned = pick_reference(points)
    budgets = fr.baseline_budgets(measured, measure.name, baseline)
    if not budgets:
        st.info(NO_GRPO.format(name=method_name(baseline)))
    elif len(budgets) == 1:
        st.warning(ONE_BUDGET.format(name=method_name(baseline), budget=budgets[0]))
    frontier = frontier_for(measured, measure, baseline)
    chart(points, frontier, measure, baseline, pinned)
    if pinned is not None:
        reference_table(points, pinned, measure)
    if frontier is not None:
        verdicts(frontier, method_name(baseline))


if __name__ == "__main__":
    ui.run_page(render)
