"""The Capability page's numbers (dashboard/capability.py) and charts, on hand-made evaluation runs with known
answers: GRPO at two budgets, FRPO at λ=0.5 (two seeds, one missing a metric) and λ=2 (one seed), a standalone
evaluation, and the runs the page must leave out."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dashboard import capability as cap
from dashboard import charts

MATH = "minerva_math500/math_verify"
CODE = "humaneval+/pass@1"


def evaluation(run_id: str, when: str | None, status: str = "succeeded", **tags) -> dict:
    extra = {"evaluates": when, "pipeline": tags.pop("pipeline", f"p-{run_id[:-2]}")} if when else {}
    return {"id": run_id, "kind": "evaluate", "status": status, "tags": {"benchmarks": ["x"], **extra, **tags}}


def bench(**values: float | None) -> dict:
    """Series as the API returns them, each metric once at step 0 (`math`, `math_stderr`, `code`, `mmlu`, …)."""
    names = {
        "math": MATH,
        "math_stderr": f"{MATH}_stderr",
        "exact": "minerva_math500/exact_match",
        "code": CODE,
        "mbpp": "mbpp+/pass@1",
        "mmlu": "mmlu/acc",
    }
    return {f"bench/{names[k]}": {"steps": [0], "values": [v]} for k, v in values.items()}


GRPO20 = dict(method="grpo", lamb=1.0, seed=0, max_steps=20, beta=0.0)
GRPO40 = dict(method="grpo", lamb=1.0, seed=0, max_steps=40, beta=0.0)
FRPO = dict(method="frpo", lamb=0.5, max_steps=40, beta=0.0)
RUNS = [
    evaluation("g20-b", "before_finetune", **GRPO20),
    evaluation("g20-a", "after_finetune", **GRPO20),
    evaluation("g40-b", "before_finetune", **GRPO40),
    evaluation("g40-a", "after_finetune", **GRPO40),
    evaluation("f0-b", "before_finetune", seed=0, **FRPO),
    evaluation("f0-a", "after_finetune", seed=0, **FRPO),
    evaluation("f1-b", "before_finetune", seed=1, **FRPO),
    evaluation("f1-a", "after_finetune", seed=1, **FRPO),
    evaluation("f2-b", "before_finetune", method="frpo", lamb=2.0, seed=0, max_steps=40),
    evaluation("f2-a", "after_finetune", method="frpo", lamb=2.0, seed=0, max_steps=40),
    evaluation("solo", None, **{"finetune_seed": 0}),  # a warm start's evaluation: no RL, no pipeline
    evaluation("broken-a", "after_finetune", "failed", **GRPO20),
    {"id": "safety", "kind": "evaluate", "status": "succeeded", "tags": {"method": "frpo", "lamb": 0.5}},
    {"id": "rl", "kind": "train", "status": "succeeded", "tags": GRPO20},
]
SERIES = {
    "g20-b": bench(math=0.30, math_stderr=0.02, exact=0.2, code=0.10, mmlu=0.5),
    "g20-a": bench(math=0.10, math_stderr=0.02, code=0.30),
    "g40-b": bench(math=0.40, code=0.10),
    "g40-a": bench(math=0.16, code=0.32),
    "f0-b": bench(math=0.40, code=0.10),
    "f0-a": bench(math=0.36, code=0.30),
    "f1-b": bench(math=0.42, code=0.12),
    "f1-a": bench(math=0.34),  # its code set was not measured
    "f2-b": bench(math=0.41, code=0.10),
    "f2-a": bench(math=0.30, code=0.31),
    "solo": bench(math=0.05, math_stderr=0.01),
    "broken-a": bench(math=0.0, code=0.0),
    "safety": {"eval/refusal_rate": {"steps": [0], "values": [0.9]}},
}


@pytest.fixture
def gathered() -> cap.Gathered:
    return cap.gather(RUNS, SERIES)


def test_gather_keeps_benchmark_evaluations_and_counts_what_it_leaves_out(gathered):
    assert len(gathered.evaluations) == 11
    assert gathered.left_out == {"failed": 1, "safety-only evaluation": 1}
    assert (gathered.count("before fine-tuning"), gathered.count("after fine-tuning")) == (5, 5)
    assert gathered.count(cap.STANDALONE) == 1 and gathered.unfinished() == 0
    assert {s.pipeline for s in gathered.scores} == {"p-g20", "p-g40", "p-f0", "p-f1", "p-f2"}  # the solo has no pair


def test_metrics_come_math_first_then_code_then_the_rest(gathered):
    assert cap.headline_metrics(gathered.evaluations) == [MATH, CODE, "mmlu/acc"]
    assert cap.measured(gathered.evaluations) == ["minerva_math500/exact_match", MATH, CODE, "mmlu/acc"]
    tasks = ["mmlu", "mbpp+", "toy_humaneval", "toy_arith", "humaneval+", "minerva_math500", "gsm8k"]
    order = sorted(tasks, key=lambda t: (cap.task_rank(t), t))
    assert order == ["gsm8k", "minerva_math500", "toy_arith", "humaneval+", "mbpp+", "toy_humaneval", "mmlu"]
    assert [cap.benchmark_name(m) for m in (MATH, CODE, "toy_arith/x")] == ["MATH500", "HumanEval+", "toy_arith"]
    assert cap.metric_name("toy_arith/exact_match/last_number") == "exact_match/last_number"


def test_the_run_table_has_one_row_per_evaluation_and_never_a_zero_for_a_missing_metric(gathered):
    frame = cap.runs_frame(gathered.evaluations, [MATH, CODE])
    assert frame["run_id"].tolist() == [
        "g20-b", "g20-a", "g40-b", "g40-a", "f0-b", "f0-a", "f1-b", "f1-a", "f2-b", "f2-a", "solo"
    ]  # fmt: skip
    assert frame["setting"].tolist()[::2] == [
        "GRPO (steps 20)", "GRPO (steps 40)", "FRPO λ=0.5", "FRPO λ=0.5", "FRPO λ=2", "no RL (e.g. a warm start)"
    ]  # fmt: skip
    assert frame["when"].tolist()[:2] == ["before fine-tuning", "after fine-tuning"]
    assert frame["when"].iloc[-1] == "standalone" and pd.isna(frame["seed"].iloc[-1])
    assert pd.isna(frame.loc[0, "lamb"]) and frame.loc[4, "lamb"] == 0.5  # GRPO's λ tag is not its setting
    row = frame.set_index("run_id").loc["f1-a"]
    assert row[MATH] == 0.34 and math.isnan(row[CODE])
    assert frame.set_index("run_id").loc["g20-b", f"{MATH} stderr"] == 0.02

    table = cap.shown_runs(frame, [MATH, CODE]).set_index("run")
    assert table.loc["run?run=f1-a", CODE] == cap.NOT_MEASURED
    assert table.loc["run?run=g20-b", MATH] == "0.300 ± 0.020"
    assert table.loc["run?run=g20-b", CODE] == "0.100"  # code sets report no standard error
    assert table.loc["run?run=g20-b", "pipeline"] == "p-g20" and table.loc["run?run=solo", "pipeline"] == ""


def test_the_summary_is_per_setting_over_seeds(gathered):
    summary = cap.summary_frame(gathered.scores, [MATH, CODE])
    assert summary["setting"].tolist() == ["GRPO (steps 20)", "GRPO (steps 40)", "FRPO λ=0.5", "FRPO λ=2"] * 2
    by = summary.set_index(["metric", "setting"])
    frpo = by.loc[(MATH, "FRPO λ=0.5")]
    assert frpo["seeds"] == 2
    assert (frpo["before"], frpo["after"], frpo["change"]) == pytest.approx((0.41, 0.35, -0.06))
    assert frpo["after_sd"] == pytest.approx(math.sqrt(2) * 0.01)  # the sample sd of 0.36 and 0.34
    one_seed = by.loc[(MATH, "FRPO λ=2")]
    assert (one_seed["seeds"], one_seed["after"], one_seed["after_sd"]) == (1, 0.30, 0.0)
    code = by.loc[(CODE, "FRPO λ=0.5")]  # seed 1 did not measure it after: the mean is seed 0's alone
    assert (code["after"], code["after_sd"], code["change"]) == pytest.approx((0.30, 0.0, 0.20))
    assert by.loc[(MATH, "GRPO (steps 20)"), "change"] == pytest.approx(-0.20)
    assert cap.has_before(summary)

    table = cap.shown_summary(summary).set_index(["metric", "setting"])
    assert table.loc[(MATH, "FRPO λ=0.5"), "change"] == "-0.060 ± 0.028"  # -0.04 and -0.08
    assert table.loc[(MATH, "FRPO λ=2"), "after"] == "0.300 ± 0.000"


def test_after_only_pipelines_have_no_before():
    runs = [r for r in RUNS if r["tags"].get("evaluates") == "after_finetune"]
    summary = cap.summary_frame(cap.gather(runs, SERIES).scores, [MATH])
    assert not cap.has_before(summary)
    assert summary["after"].notna().all() and summary["before"].isna().all()
    assert cap.shown_summary(summary)["before"].unique().tolist() == [cap.NOT_MEASURED]


def test_the_lambda_chart_draws_frpo_against_lambda_and_a_labelled_line_per_grpo_budget(gathered):
    summary = cap.summary_frame(gathered.scores, [MATH, CODE])
    frame = cap.lambda_frame(summary)
    assert frame["group"].tolist() == ["GRPO (steps 20)", "GRPO (steps 40)", "FRPO λ=0.5", "FRPO λ=2"]
    assert frame[MATH].tolist() == pytest.approx([0.10, 0.16, 0.35, 0.30])
    panels = [(MATH, "MATH500", "after"), (CODE, "HumanEval+", "after")]
    fig = charts.lambda_figure(frame, panels, title="T", subtitle="S")
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    names = [t.name for t in fig.data if t.showlegend]
    assert names == ["FRPO", "GRPO baseline (steps 20), λ → ∞", "GRPO baseline (steps 40), λ → ∞"]
    frpo, grpo20, grpo40 = fig.data[:3]
    assert list(frpo.x) == [0.5, 2.0] and list(frpo.y) == pytest.approx([0.35, 0.30])
    assert list(grpo20.x) == [0.5, 2.0] and list(grpo20.y) == pytest.approx([0.10, 0.10])
    assert grpo20.line.dash == "dash" and list(grpo40.text) == ["steps 40", ""]
    assert grpo20.line.color != grpo40.line.color


def test_one_lambda_still_gets_a_visible_grpo_line():
    assert charts.lambda_span(pd.Series([1.0])) == (0.5, 2.0)
    assert charts.lambda_span(pd.Series([0.2, 1.0])) == (0.2, 1.0)
    assert charts.lambda_span(pd.Series([], dtype=float)) == (0.1, 10.0)


def test_the_bars_are_before_and_after_per_setting(gathered):
    summary = cap.summary_frame(gathered.scores, [MATH, CODE])
    panels = [(cap.benchmark_name(m), m, summary[summary["metric"] == m]) for m in (MATH, CODE)]
    bars = [("before", "before fine-tuning"), ("after", "after fine-tuning")]
    fig = charts.bars_figure(panels, bars, x="setting", title="T", subtitle="S")
    assert [t.name for t in fig.data] == ["before fine-tuning", "after fine-tuning"] * 2
    assert [t.showlegend for t in fig.data] == [True, True, False, False]
    after = fig.data[1]
    assert list(after.x) == ["GRPO (steps 20)", "GRPO (steps 40)", "FRPO λ=0.5", "FRPO λ=2"]
    assert list(after.y) == pytest.approx([0.10, 0.16, 0.35, 0.30])
    assert list(after.error_y.array) == pytest.approx([0.0, 0.0, math.sqrt(2) * 0.01, 0.0])
    assert fig.layout.barmode == "group"


def test_queued_evaluations_are_listed_but_not_measured_yet():
    gathered = cap.gather([evaluation("q-b", "before_finetune", "queued", **GRPO20)], {})
    assert gathered.unfinished() == 1 and cap.headline_metrics(gathered.evaluations) == []
    assert cap.runs_frame(gathered.evaluations, [])[["setting", "status"]].values.tolist() == [["GRPO", "queued"]]
