"""Frontier: is FRPO more robust, or did it only train harder? Robustness after downstream fine-tuning against the KL
each RL run moved, GRPO's budgets tracing a frontier, and a verdict per FRPO λ (docs/method.md §7).

The selection and the measure live in the URL: `/frontier?sweep=<id>&measure=drop` or `/frontier?runs=<id>,…`.
The numbers are `analysis.pipelines` and `analysis.verdict`'s, the ones `frpo demo` prints.
"""

from __future__ import annotations

import streamlit as st

from analysis.frontier import MEASURES, Measure
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
    "**No GRPO budgets to trace a frontier with.** FRPO is judged against GRPO trained to several budgets; give the "
    'sweep a `grpo_budgets` option (e.g. `"grpo_budgets": {"checkpoints": [60, 120, 180], "beta": [0.05, 0]}`: one '
    "GRPO run per β × seed, fine-tuned from its checkpoint at each step; or `max_steps`, `learning_rate`, "
    "`scale_rewards`), or start from the `toy-frontier` preset (the paper's setting: `safety-frontier-mistral-7b`)."
)
ONE_BUDGET = (
    "**Only one GRPO budget ({budget}):** a single point, not a frontier, so only an FRPO setting that moved exactly "
    'its KL can be judged. Give GRPO more budgets with the sweep\'s `grpo_budgets` option (e.g. `{{"max_steps": '
    "[60, 120, 180]}}`) or the `toy-frontier` preset."
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


@st.cache_data(ttl=reads.SERIES_TTL, show_spinner=False)
def _compare(grpo: tuple, frpo: tuple, measure: str) -> Comparison:
    """`analysis.verdict.compare`, kept across reruns with the same numbers."""
    return compare(dict(grpo), dict(frpo), measure=measure)


def frontier_for(pipelines: list[fr.Pipeline], measure: Measure) -> Comparison | None:
    """GRPO's frontier and a verdict per FRPO λ (`analysis.verdict.compare`, cached); None without GRPO points."""
    grpo, frpo = fr.compare_points(pipelines, measure.name)
    if not grpo:
        return None
    frozen = [tuple((setting, tuple(seeds)) for setting, seeds in points.items()) for points in (grpo, frpo)]
    return _compare(*frozen, measure.name)


def axis_title(measure: Measure) -> str:
    return f"{measure.label} ({'higher' if measure.higher_is_better else 'lower'} is more robust)"


def chart(points, frontier: Comparison | None, measure: Measure) -> None:
    means = fr.setting_means(points)
    curve = frontier.curve if frontier else []
    fig = charts.frontier_figure(
        points,
        means,
        curve,
        title="Is FRPO more robust, or did it only train harder?",
        subtitle=f"x: KL the RL run moved; y: {measure.label}; faint = runs, large = mean per setting "
        "(FRPO ± 1 sd over seeds); dashed = GRPO's frontier (a monotone fit through its runs)",
        x_title="KL moved during RL (nats per sequence, from the model RL started from)",
        y_title=axis_title(measure),
    )
    ui.chart(
        fig,
        f"frontier {measure.name}",
        fr.export_frame(points, frontier, measure),
        key="frontier",
        note="The CSV holds every run's point, each setting's mean and GRPO's frontier.",
    )


def verdicts(frontier: Comparison) -> None:
    st.subheader("Verdict per λ")
    if not frontier.verdicts:
        st.info("No FRPO runs here to hold against GRPO's frontier (or none that measured both numbers).")
        return
    st.caption(
        f"Δ is FRPO's {frontier.measure.label} minus GRPO's frontier at the KL each FRPO seed moved, averaged over "
        f"its seeds inside GRPO's KL range (positive = more robust); the frontier is a monotone fit through every "
        f"GRPO run, never extrapolated. The {frontier.level:.0%} interval is a t interval over seeds that includes "
        "the frontier's own noise; each claim is a one-sided test at "
        f"{(1 - frontier.level) / 2:.1%}, Holm-corrected across the λ compared. The label comes last: "
        f"**more robust**, **not more robust by at least {frontier.margin:g}**, **inconclusive** (with the effect "
        "these seeds could detect at 80% power) or **beyond GRPO's reach** (most seeds moved a KL outside GRPO's)."
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
    points = fr.points_frame(measured, measure.name)
    if points.empty:
        key = fr.MEASURE_KEYS[measure.name]
        st.info(
            f"**{measure.label.capitalize()}: not measured** for these runs (their fine-tuning runs logged no "
            f"`{key}`). Pick another measure in the sidebar."
        )
        return
    budgets = fr.grpo_budgets(measured, measure.name)
    if not budgets:
        st.info(NO_GRPO)
    elif len(budgets) == 1:
        st.warning(ONE_BUDGET.format(budget=budgets[0]))
    frontier = frontier_for(measured, measure)
    chart(points, frontier, measure)
    if frontier is not None:
        verdicts(frontier)


if __name__ == "__main__":
    ui.run_page(render)
