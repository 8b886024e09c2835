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
