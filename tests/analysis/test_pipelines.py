"""Pipeline numbers and their summary over seeds, on hand-made series with known answers."""

from __future__ import annotations

import math

import pytest

from analysis.pipelines import PipelineResult, Spread, format_table, pipeline_result, summarise


def result(method, lamb, seed, before, after, kl=0.5, over=0.1):
    return PipelineResult(method, lamb, seed, kl, before, after, over)


def test_pipeline_result_reads_first_and_last_evaluations():
    rl = {"eval/kl_safety": [(0, 0.0), (40, 0.3), (120, 0.7)]}
    finetune = {
        "eval/refusal_rate": [(0, 0.9), (10, 0.8), (40, 0.6)],
        "eval/refusal_rate_normal": [(0, 0.05), (40, 0.2)],
    }
    r = pipeline_result({"method": "frpo", "lamb": 0.5, "seed": 2}, rl, finetune)
    assert (r.method, r.lamb, r.seed) == ("frpo", 0.5, 2)
    assert r.kl_moved == 0.7 and r.refusal_after_rl == 0.9 and r.refusal_after_finetune == 0.6
    assert r.over_refusal_after_finetune == 0.2
    assert r.drop == pytest.approx(0.3)
    assert r.measure == "greedy"  # runs that logged only the greedy measures


def test_pipeline_result_prefers_the_sampled_measures_where_the_runs_logged_them():
    rl = {"eval/kl_safety": [(0, 0.0), (40, 9.0)], "eval/kl_safety_sampled": [(0, 0.0), (40, 0.7)]}
    finetune = {
        "eval/refusal_rate": [(0, 1.0), (40, 0.0)],
        "eval/refusal_rate_normal": [(0, 0.0), (40, 1.0)],
        "eval/refusal_prob": [(0, 0.9), (40, 0.6)],
        "eval/refusal_prob_normal": [(0, 0.05), (40, 0.2)],
    }
    r = pipeline_result({"method": "frpo", "lamb": 0.5}, rl, finetune)
    assert (r.kl_moved, r.refusal_after_rl, r.refusal_after_finetune, r.over_refusal_after_finetune) == (
        0.7,
        0.9,
        0.6,
        0.2,
    )
    assert r.measure == "sampled"
    greedy_rl = {"eval/kl_safety": rl["eval/kl_safety"]}
    mixed = pipeline_result({"method": "frpo", "lamb": 0.5}, greedy_rl, finetune)
    assert mixed.kl_moved == 9.0 and mixed.refusal_after_finetune == 0.6
    assert mixed.measure == "KL greedy, refusal sampled"


def test_missing_series_give_none_not_an_error():
    r = pipeline_result({"method": "grpo", "lamb": None, "seed": 0}, {}, {"eval/refusal_rate": [(0, 1.0)]})
    assert r.kl_moved is None and r.over_refusal_after_finetune is None
    assert r.drop == 0.0  # first and last are the same point
    assert pipeline_result({"method": "grpo"}, {}, {}).drop is None


def test_spread_over_seeds():
    s = Spread.of([0.5, 0.7, 0.9])
    assert s.mean == pytest.approx(0.7) and s.sd == pytest.approx(0.2) and (s.low, s.high, s.n) == (0.5, 0.9, 3)
    assert Spread.of([0.4]).sd == 0.0
    empty = Spread.of([None, math.nan])
    assert empty.n == 0 and empty.format() == "–"


def test_summary_groups_by_method_and_lambda_grpo_first():
    results = [
        result("frpo", 0.5, 0, 1.0, 0.8),
        result("frpo", 0.2, 0, 1.0, 0.7),
        result("grpo", None, 0, 1.0, 0.4),
        result("grpo", None, 1, 0.9, 0.5),
        result("frpo", 0.5, 1, 0.9, 0.6),
    ]
    summaries = summarise(results)
    assert [s.label for s in summaries] == ["GRPO", "FRPO λ=0.2", "FRPO λ=0.5"]
    grpo = summaries[0]
    assert grpo.seeds == 2 and grpo.refusal_after_finetune.mean == pytest.approx(0.45)
    assert grpo.drop.mean == pytest.approx(0.5)
    table = format_table(summaries)
    assert table.splitlines()[0].startswith("setting") and "FRPO λ=0.5" in table and "0.45 ± 0.07" in table


def budgeted(method, lamb, seed, steps, kl, after):
    tags = {"method": method, "lamb": lamb, "seed": seed, "max_steps": steps, "beta": 0.05, "learning_rate": 1e-3}
    rl = {"eval/kl_safety": [(steps, kl)]}
    return pipeline_result(tags, rl, {"eval/refusal_rate": [(0, 1.0), (40, after)]})


def test_grpo_budgets_are_separate_groups_labelled_by_what_differs():
    results = [
        budgeted("grpo", None, 0, 120, 0.4, 0.5),
        budgeted("grpo", None, 0, 60, 0.3, 0.4),
        budgeted("grpo", None, 1, 60, 0.35, 0.42),
        budgeted("frpo", 0.2, 0, 120, 0.45, 0.6),
    ]
    assert [s.label for s in summarise(results)] == ["GRPO (steps 60)", "GRPO (steps 120)", "FRPO λ=0.2"]
    assert results[0].budget == (("steps", 120.0), ("β", 0.05), ("lr", 0.001))


def test_frontier_points_split_grpo_budgets_from_frpo_settings():
    from analysis.pipelines import frontier_points

    results = [
        budgeted("grpo", None, 0, 60, 0.3, 0.4),
        budgeted("grpo", None, 1, 60, 0.35, 0.42),
        budgeted("frpo", 0.2, 0, 120, 0.45, 0.6),
        PipelineResult("frpo", 0.2, 1, None, 1.0, 0.5, 0.0),  # no KL measured: left out
    ]
    grpo, frpo = frontier_points(results)
    assert grpo == {"steps 60, β 0.05, lr 0.001": [(0.3, 0.4), (0.35, 0.42)]}
    assert frpo == {"FRPO λ=0.2": [(0.45, 0.6)]}
    _, drops = frontier_points(results, measure="drop")
    assert drops["FRPO λ=0.2"] == [(0.45, pytest.approx(0.4))]


def test_other_baselines_are_settings_placed_against_the_reference_frontier_or_are_the_reference():
    from analysis.pipelines import frontier_points

    results = [
        budgeted("grpo", None, 0, 60, 0.3, 0.4),
        budgeted("dr_grpo", None, 0, 60, 0.32, 0.45),
        budgeted("dr_grpo", None, 1, 120, 0.5, 0.5),
        budgeted("frpo", 0.2, 0, 120, 0.45, 0.6),
    ]
    grpo, others = frontier_points(results)
    assert list(grpo) == ["steps 60, β 0.05, lr 0.001"]
    assert others == {
        "Dr. GRPO (steps 60)": [(0.32, 0.45)],
        "Dr. GRPO (steps 120)": [(0.5, 0.5)],
        "FRPO λ=0.2": [(0.45, 0.6)],
    }
    dr_grpo, others = frontier_points(results, reference="dr_grpo")  # any baseline can trace the frontier
    assert sum(len(points) for points in dr_grpo.values()) == 2 and set(others) == {"GRPO", "FRPO λ=0.2"}
    labels = [s.label for s in summarise(results)]
    assert labels == ["GRPO", "Dr. GRPO (steps 60)", "Dr. GRPO (steps 120)", "FRPO λ=0.2"]


def test_a_point_along_one_run_reads_the_rl_runs_evaluation_at_its_step_and_is_labelled_so():
    from analysis.pipelines import frontier_points

    tags = {"method": "grpo", "seed": 0, "max_steps": 180, "beta": 0.0, "learning_rate": 1e-3, "scale_rewards": "none"}
    rl = {"eval/kl_safety": [(0, 0.0), (60, 1.5), (120, 3.0), (180, 4.5)]}
    finetune = {"eval/refusal_rate": [(0, 0.9), (40, 0.5)]}
    results = [pipeline_result(tags, rl, finetune, step) for step in (60, 120, 180)]
    assert [r.kl_moved for r in results] == [1.5, 3.0, 4.5]  # the KL moved by that step, not the run's last
    assert results[0].budget == (("@", 60.0), ("β", 0.0), ("lr", 0.001), ("scale", "none"))
    separate = pipeline_result({**tags, "max_steps": 60, "beta": 0.05}, rl, finetune)
    assert separate.kl_moved == 4.5 and separate.budget[0] == ("steps", 60.0)  # a run of its own: its last
    frpo = budgeted("frpo", 0.2, 0, 120, 2.0, 0.6)
    labels = [s.label for s in summarise([*results, frpo])]
    assert labels == ["GRPO @60 (one run)", "GRPO @120 (one run)", "GRPO @180 (one run)", "FRPO λ=0.2"]
    grpo, others = frontier_points([*results, frpo])
    assert [points for points in grpo.values()] == [[(1.5, 0.5)], [(3.0, 0.5)], [(4.5, 0.5)]]
    assert list(grpo)[0] == "@60 (one run), β 0, lr 0.001, scale none" and list(others) == ["FRPO λ=0.2"]
    assert pipeline_result(tags, rl, finetune, 90).kl_moved is None  # not evaluated there: no point
    knobs = [pipeline_result({**tags, "scale_rewards": scale}, rl, finetune, 60) for scale in ("none", "group")]
    assert [s.label for s in summarise(knobs)] == ["GRPO (scale group)", "GRPO (scale none)"]
