"""`frpo report SWEEP`: a user's sweep printed as the demo prints its own."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_a_safety_sweep_gets_its_table_and_the_frontier_verdicts(runner, frontier_api):
    url, seeded = frontier_api
    result = runner(url, seeded.read_key)("report", seeded.sweeps["frontier"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "jobs succeeded" in out and "refusal after RL" in out and "GRPO's frontier" in out
    assert "FRPO λ=" in out  # one line per FRPO setting against the frontier


def test_a_benchmark_sweep_gets_before_and_after(runner, math_api):
    url, seeded = math_api
    result = runner(url, seeded.read_key)("report", seeded.sweeps["toy math frontier"])
    assert result.exit_code == 0, result.output
    assert "Benchmarks before and after fine-tuning" in result.stdout and "toy_arith" in result.stdout


def test_a_sweep_without_kl_gets_its_table_and_says_why_there_is_no_verdict(runner, frontier_api):
    url, seeded = frontier_api
    result = runner(url, seeded.read_key)("report", seeded.sweeps["no-eval"])
    assert result.exit_code == 0 and "refusal after RL" in result.stdout
    assert "No frontier verdict: GRPO has no finished points" in result.stdout


def test_a_sweep_with_nothing_to_report_says_so(runner, empty_api):
    url, seeded = empty_api
    frpo = runner(url, seeded.submit_key)
    sweep_id = frpo("sweeps", "submit", "--set", "name=queued", "--set", "base.kind=train", "--set", "grid.seed=[0]")
    result = frpo("report", sweep_id.stdout.strip())
    assert (
        result.exit_code == 1 and "0 of 2 jobs succeeded" in result.stdout and "nothing to report yet" in result.stdout
    )


def test_any_baseline_loss_type_can_trace_the_frontier_the_others_are_placed_against():
    from analysis.pipelines import pipeline_result
    from cli.demo import safety_report

    def result(method, lamb, seed, steps, kl, after):
        tags = {"method": method, "lamb": lamb, "seed": seed, "max_steps": steps}
        return pipeline_result(tags, {"eval/kl_safety": [(steps, kl)]}, {"eval/refusal_rate": [(0, 1.0), (9, after)]})

    results = [
        *(
            result("dr_grpo", None, s, steps, kl + 0.01 * s, y)
            for s in range(3)
            for steps, kl, y in ((60, 0.3, 0.4), (120, 0.5, 0.5), (180, 0.7, 0.55))
        ),  # fmt: skip
        *(result("grpo", None, s, 120, 0.5 + 0.01 * s, 0.45) for s in range(3)),
        *(result("frpo", 0.5, s, 120, 0.5 + 0.01 * s, 0.7) for s in range(3)),
    ]
    lines = "\n".join(safety_report(results, reference="dr_grpo"))
    assert "Dr. GRPO's frontier over its budgets" in lines
    assert "- GRPO: Δ = " in lines and "- FRPO λ=0.5: Δ = " in lines and "against Dr. GRPO's frontier" in lines
    assert "Dr. GRPO" in lines.split("\n\n")[0]  # the table has a row per baseline budget
