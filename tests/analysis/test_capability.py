"""Benchmark scores before and after fine-tuning, paired by pipeline, on hand-made evaluation runs."""

from __future__ import annotations

import pytest

from analysis.capability import (
    format_rewards,
    format_scores,
    headline,
    pipeline_scores,
    scores,
    stderrs,
    summarise_scores,
    training_reward,
)


def evaluation(run_id, pipeline, when, method="frpo", lamb=0.5, seed=0, status="succeeded", **tags):
    tags = {"pipeline": pipeline, "evaluates": when, "method": method, "lamb": lamb, "seed": seed, **tags}
    return {"id": run_id, "status": status, "tags": tags}


def bench(**values):
    """Series as the store holds them: each metric once, at step 0 (`math` stands for `toy_arith/exact_match`)."""
    names = {"math": "bench/toy_arith/exact_match", "code": "bench/toy_humaneval/pass@1"}
    return {names[k]: [(0, v)] for k, v in values.items()}


def test_scores_and_stderrs_read_the_bench_series():
    series = {
        "bench/minerva_math500/math_verify": [(0, 0.4)],
        "bench/minerva_math500/math_verify_stderr": [(0, 0.02)],
        "bench/ifeval/prompt_level_strict_acc": [(0, 0.6)],
        "eval/refusal_rate": [(0, 0.9)],
        "bench/empty": [],
    }
    assert scores(series) == {"minerva_math500/math_verify": 0.4, "ifeval/prompt_level_strict_acc": 0.6}
    assert stderrs(series) == {"minerva_math500/math_verify": 0.02}


def test_headline_picks_each_benchmarks_usual_score():
    metrics = [
        "minerva_math500/exact_match",
        "minerva_math500/math_verify",
        "toy_arith/exact_match/last_number",
        "mbpp+/pass@1",
        "mmlu/acc_norm",
        "mmlu/acc",
        "ifeval/inst_level_loose_acc",
        "ifeval/prompt_level_strict_acc",
        "custom/score_b",
        "custom/score_a",
    ]
    assert headline(metrics) == {
        "custom": "custom/score_a",
        "ifeval": "ifeval/prompt_level_strict_acc",
        "mbpp+": "mbpp+/pass@1",
        "minerva_math500": "minerva_math500/math_verify",
        "mmlu": "mmlu/acc",
        "toy_arith": "toy_arith/exact_match/last_number",
    }
    assert headline(["t/exact_match/flexible", "t/exact_match"]) == {"t": "t/exact_match"}


def test_before_and_after_are_paired_by_pipeline():
    jobs = [
        evaluation("b1", "p1", "before_finetune", seed=0),
        evaluation("a1", "p1", "after_finetune", seed=0),
        evaluation("b2", "p2", "before_finetune", method="grpo", lamb=1.0, max_steps=40),
        evaluation("a2", "p2", "after_finetune", method="grpo", lamb=1.0, max_steps=40),
        evaluation("a3", "p3", "after_finetune", status="failed"),  # says nothing
        {"id": "alone", "status": "succeeded", "tags": {"method": "frpo", "lamb": 0.5}},  # no pair: not a pipeline
    ]
    series = {
        "b1": bench(math=0.5, code=0.0),
        "a1": bench(math=0.3, code=0.5),
        "b2": bench(math=0.6),
        "a2": {},  # still running: nothing logged yet
        "a3": bench(math=0.0),
        "alone": bench(math=1.0),
    }
    found = {(s.pipeline, s.metric): s for s in pipeline_scores(jobs, series)}
    assert set(found) == {
        ("p1", "toy_arith/exact_match"),
        ("p1", "toy_humaneval/pass@1"),
        ("p2", "toy_arith/exact_match"),
    }
    math1 = found["p1", "toy_arith/exact_match"]
    assert (math1.before, math1.after, math1.change) == (0.5, 0.3, pytest.approx(-0.2))
    assert found["p1", "toy_humaneval/pass@1"].change == 0.5
    grpo = found["p2", "toy_arith/exact_match"]
    assert (grpo.method, grpo.before, grpo.after, grpo.change) == ("grpo", 0.6, None, None)
    assert grpo.budget == (("steps", 40.0),)


def test_a_pipeline_fine_tuned_from_several_checkpoints_gives_one_point_per_step():
    jobs = [
        evaluation(f"a{step}", "p1", "after_finetune", method="grpo", max_steps=180, parent_step=step)
        for step in (60, 180)
    ]
    series = {"a60": bench(math=0.4), "a180": bench(math=0.2)}
    found = {s.budget: s.after for s in pipeline_scores(jobs, series)}
    assert found == {(("@", 60.0),): 0.4, (("@", 180.0),): 0.2}  # the run at each step, not one merged pipeline


def test_summary_per_metric_and_setting_grpo_first():
    jobs, series = [], {}
    for seed, (before, after) in enumerate([(0.5, 0.3), (0.7, 0.3)]):
        for method, lamb, shift in (("frpo", 0.5, 0.1), ("grpo", 1.0, 0.0), ("frpo", 0.2, 0.2)):
            pipeline = f"{method}{lamb}-{seed}"
            jobs += [
                evaluation(f"{pipeline}b", pipeline, "before_finetune", method, lamb, seed),
                evaluation(f"{pipeline}a", pipeline, "after_finetune", method, lamb, seed),
            ]
            series[f"{pipeline}b"] = bench(math=before, code=0.0)
            series[f"{pipeline}a"] = bench(math=after + shift, code=0.25)
    summaries = summarise_scores(pipeline_scores(jobs, series), ["toy_arith/exact_match"])
    assert [s.label for s in summaries] == ["GRPO", "FRPO λ=0.2", "FRPO λ=0.5"]
    grpo, frpo02, _ = summaries
    assert grpo.seeds == 2 and grpo.before.mean == pytest.approx(0.6) and grpo.after.mean == pytest.approx(0.3)
    assert grpo.change.mean == pytest.approx(-0.3) and grpo.change.sd == pytest.approx(0.1414, abs=1e-4)
    assert frpo02.after.mean == pytest.approx(0.5)
    everything = summarise_scores(pipeline_scores(jobs, series))
    assert [s.metric for s in everything] == ["toy_arith/exact_match"] * 3 + ["toy_humaneval/pass@1"] * 3
    table = format_scores(summaries)
    assert table.splitlines()[0].split() == ["benchmark", "setting", "seeds", "before", "fine-tuning", "after"] + [
        "fine-tuning",
        "change",
    ]
    assert "-0.30 ± 0.14" in table and "FRPO λ=0.2" in table


def test_training_reward_at_the_start_and_end_of_rl_per_setting():
    key = "rewards/math/mean"
    runs = [
        ({"method": "grpo", "seed": 0, "max_steps": 20}, {key: [(1, 0.1), (10, 0.2), (20, 0.3)]}),
        ({"method": "grpo", "seed": 1, "max_steps": 20}, {key: [(1, 0.1), (20, 0.5)]}),
        ({"method": "grpo", "seed": 0, "max_steps": 40}, {key: [(1, 0.1), (40, 0.6)]}),
        ({"method": "frpo", "lamb": 0.2, "seed": 0, "max_steps": 20}, {}),  # logged nothing
    ]
    rewards = [training_reward(tags, series, key) for tags, series in runs]
    assert (rewards[0].first, rewards[0].last, rewards[0].change) == (0.1, 0.3, pytest.approx(0.2))
    assert rewards[3].change is None
    lines = format_rewards(rewards).splitlines()
    assert lines[0].split() == ["setting", "seeds", "start", "of", "RL", "end", "of", "RL", "change"]
    rows = {line.split("  ")[0]: line for line in lines[2:]}
    assert set(rows) == {"GRPO (steps 20)", "GRPO (steps 40)", "FRPO λ=0.2"}
    assert "0.40 ± 0.14" in rows["GRPO (steps 20)"] and "+0.30 ± 0.14" in rows["GRPO (steps 20)"]
    assert rows["FRPO λ=0.2"].count("–") == 3


def test_training_reward_averages_a_window_of_steps_at_each_end():
    key = "math/accuracy"
    series = {key: [(1, 0.1), (2, 0.3), (3, 0.4), (4, 0.6), (5, 0.8)]}
    two = training_reward({"method": "grpo"}, series, key, window=2)
    assert (two.first, two.last) == (pytest.approx(0.2), pytest.approx(0.7))
    wide = training_reward({"method": "grpo"}, series, key, window=10)  # a short run: every step at both ends
    assert wide.first == wide.last == pytest.approx(0.44)
    with pytest.raises(ValueError, match="window=0 must be at least 1"):
        training_reward({"method": "grpo"}, series, key, window=0)
