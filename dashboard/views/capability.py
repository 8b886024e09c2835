"""Capability: what downstream fine-tuning cost and gained in capability, GRPO against FRPO (docs/method.md §3).

The paper's math setting: MATH500 after code SFT against FRPO's λ with GRPO as the reference, the code sets (MBPP+,
HumanEval+) beside it, before / after bars per setting, and the benchmark table of any set of runs. The selection
lives in the URL: `/capability?sweep=<id>` or `/capability?runs=<id>,…` (evaluation runs, or the RL and fine-tuning
runs they evaluated). The numbers are `analysis.capability`'s.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import capability as cap
from dashboard import charts, reads, ui
from dashboard.client import ApiConfig

INTRO = (
    "Does fine-tuning a model for one skill cost it another? In the paper's math setting a model is trained with "
    "math RL (**GRPO**, or **FRPO** at several λ), then fine-tuned on code. Each pipeline's evaluation runs score "
    "the RL model (**before** the fine-tuning) and the fine-tuned one (**after**): MATH500 says what the code SFT "
    "cost, MBPP+ and HumanEval+ what it gained. Seeds of one setting are averaged, with ± 1 sd over seeds."
)
NO_SELECTION = (
    "**Nothing to show yet.** This view needs pipelines whose evaluation runs benchmarks: submit the "
    "`toy-math-frontier` sweep preset (toy scale, CPU; the paper's is `math-frontier-qwen2.5-math-7b`) on the "
    "**Jobs** page, then pick the sweep in the sidebar."
)
NO_EVALUATIONS = (
    "**No benchmark evaluations in this selection yet.** Benchmark scores come from `evaluate` runs with "
    '`benchmarks`: a `pipeline` whose `evaluation` names them (e.g. `"evaluation": {"benchmarks": '
    '["minerva_math500", "mbpp+", "humaneval+"]}`, with `"evaluate_before": true` for the RL model too), '
    "or an `evaluate` job with a `run_id`. A pipeline's evaluations start when the run they evaluate finishes."
)
NOT_YET = (
    "**Not measured yet:** {n} benchmark evaluation run(s) are queued or running; their scores appear here when "
    "they finish."
)
AFTER_ONLY = (
    "**Before / after needs `evaluate_before: true`.** These pipelines evaluated only the fine-tuned model, so "
    'there is no *before* to compare with. With `"evaluate_before": true` in the pipeline spec the RL model is '
    "evaluated on the same benchmarks too (a second evaluation run, child of the RL run)."
)
STANDALONE_ONLY = (
    "These evaluation runs are not part of a pipeline (no `pipeline` tag), so there is no before / after to pair "
    "and no setting to put on a λ axis: their scores are in the table below."
)
RUN_KINDS = ("evaluate", "finetune", "train")


def choose(config: ApiConfig) -> tuple[tuple[str, ...], str | None]:
    """The sidebar: a sweep or runs, mirrored in the URL so the view can be shared."""
    mode, run_ids, sweep_id = ui.choose_selection(
        config,
        prefix="benchmarks",
        title="Benchmarks of",
        kinds=RUN_KINDS,
        runs_help="Evaluation runs, or the RL and fine-tuning runs they evaluated (their evaluation runs come along).",
    )
    ui.set_query(**ui.selection_query(mode, run_ids, sweep_id))
    return run_ids, sweep_id


def _left_out(gathered: cap.Gathered) -> str:
    if not gathered.left_out:
        return ""
    return " Evaluation runs left out: " + ", ".join(f"{n} {why}" for why, n in gathered.left_out.items()) + "."


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _described(gathered: cap.Gathered) -> str:
    """What the selection holds, what was left out and what is still running, in a sentence."""
    pipelines = {(e.job.get("tags") or {}).get("pipeline") for e in gathered.evaluations} - {None}
    counts = ", ".join(
        f"{gathered.count(when)} {when}" for when in (*cap.WHEN.values(), cap.STANDALONE) if gathered.count(when)
    )
    text = f"{_count(len(gathered.evaluations), 'benchmark evaluation run')} ({counts})"
    text += f" of {_count(len(pipelines), 'pipeline')}." if pipelines else "."
    text += _left_out(gathered)
    if gathered.unfinished():
        text += f" {gathered.unfinished()} still queued or running (not measured yet)."
    return text


def lambda_chart(summary: pd.DataFrame) -> None:
    """Each benchmark after fine-tuning against FRPO's λ, GRPO as its λ → ∞ reference line."""
    frame = cap.lambda_frame(summary)
    metrics = [m for m in dict.fromkeys(summary["metric"]) if frame[m].notna().any()]
    if not metrics:
        st.caption("After fine-tuning: **not measured** yet for these pipelines.")
        return
    panels = [(m, cap.benchmark_name(m), cap.metric_name(m)) for m in metrics]
    fig = charts.lambda_figure(
        frame,
        panels,
        title="Benchmarks after fine-tuning against FRPO's λ",
        subtitle="each benchmark's usual score; FRPO mean over seeds, error bars ± 1 sd; dashed = GRPO (λ → ∞), "
        "one line per budget",
    )
    ui.chart(fig, "benchmarks after fine-tuning vs lambda", summary, key="bench-lambda")
    methods = set(summary["method"])
    if "grpo" not in methods:
        st.caption(":material/info: No GRPO among these pipelines: there is no reference line to compare FRPO with.")
    if "frpo" not in methods:
        st.caption(":material/info: No FRPO among these pipelines: only GRPO's reference lines are drawn.")


def bars_chart(summary: pd.DataFrame) -> None:
    """Before and after fine-tuning, side by side, per setting and benchmark."""
    panels = [
        (cap.benchmark_name(m), cap.metric_name(m), summary[summary["metric"] == m])
        for m in dict.fromkeys(summary["metric"])
    ]
    fig = charts.bars_figure(
        panels,
        [("before", "before fine-tuning"), ("after", "after fine-tuning")],
        x="setting",
        title="Before and after fine-tuning, per setting",
        subtitle="mean over seeds, error bars ± 1 sd over seeds; GRPO's budgets first, then FRPO by λ",
    )
    ui.chart(fig, "benchmarks before and after fine-tuning", summary, key="bench-bars")


def tables(gathered: cap.Gathered, headline: list[str]) -> None:
    """The per-setting summary and every evaluation run, for the metrics picked in the sidebar."""
    metrics = st.sidebar.multiselect(
        "Metrics in the tables",
        cap.measured(gathered.evaluations),
        default=headline,
        key="benchmarks_metrics",
        help="Each benchmark's usual score by default; lm-eval also logs other metrics and filters.",
    )
    if gathered.scores:
        st.subheader("Per setting")
        st.caption(
            "Mean ± sd over seeds (the pipelines of one setting); the change is after − before, per pipeline, "
            "then averaged."
        )
        summary = cap.summary_frame(gathered.scores, metrics)
        ui.table(cap.shown_summary(summary), "benchmarks per setting", key="bench-summary", export=summary)
    st.subheader("Every evaluation run")
    st.caption("Each metric ± its standard error as the harness reported it (code sets report none).")
    frame = cap.runs_frame(gathered.evaluations, metrics)
    link = st.column_config.LinkColumn("run", display_text=r"run=(.{8})", help="Opens the run's page")
    ui.table(
        cap.shown_runs(frame, metrics), "benchmark runs", key="bench-runs", export=frame, column_config={"run": link}
    )


def render() -> None:
    st.title("Benchmarks before and after fine-tuning")
    st.markdown(INTRO)
    config = ui.api_config()
    run_ids, sweep_id = choose(config)
    if not run_ids and not sweep_id:
        st.info(NO_SELECTION)
        return
    runs = reads.runs_of(config.url, config.key, run_ids, sweep_id, evaluations=True)
    evaluate = [r for r in runs if r["kind"] == cap.EVALUATE]
    gathered = cap.gather(evaluate, reads.series(config.url, config.key, reads.ids(evaluate), ()))
    if not gathered.evaluations:
        st.info(NO_EVALUATIONS)
        if gathered.left_out:
            st.caption(_left_out(gathered).strip())
        return
    st.caption(_described(gathered))
    headline = cap.headline_metrics(gathered.evaluations)
    if not headline:
        st.info(NOT_YET.format(n=gathered.unfinished()))
    elif gathered.scores:
        summary = cap.summary_frame(gathered.scores, headline)
        lambda_chart(summary)
        if cap.has_before(summary):
            bars_chart(summary)
        else:
            st.info(AFTER_ONLY)
    else:
        st.info(STANDALONE_ONLY)
    tables(gathered, headline)


if __name__ == "__main__":
    ui.run_page(render)
