"""GRPO's frontier: a monotone fit through every GRPO run, never extrapolated."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.frontier import MEASURES, fit_frontier, measure_named


def test_the_frontier_is_non_decreasing_in_kl_and_pools_runs_that_break_the_order():
    frontier = fit_frontier([(0.1, 0.2), (0.2, 0.6), (0.3, 0.4), (0.4, 0.7)])
    assert frontier.knots_kl.tolist() == pytest.approx([0.1, 0.25, 0.4])  # (0.2, 0.6) and (0.3, 0.4) pooled
    assert frontier.knots_value.tolist() == pytest.approx([0.2, 0.5, 0.7])
    assert frontier.block_sizes.tolist() == [1, 2, 1]
    assert np.all(np.diff([y for _, y in frontier.curve()]) >= 0)


def test_the_frontier_is_linear_between_blocks_and_defined_only_on_grpos_kl_range():
    frontier = fit_frontier([(0.1, 0.2), (0.2, 0.6), (0.3, 0.4), (0.4, 0.7)])
    assert frontier.at(0.175) == pytest.approx(0.35) and frontier.at(0.1) == pytest.approx(0.2)
    assert frontier.at(0.09) is None and frontier.at(0.41) is None
    assert frontier.curve()[0] == (0.1, pytest.approx(0.2)) and frontier.curve()[-1] == (0.4, pytest.approx(0.7))


def test_an_upper_envelope_bias_is_gone_every_seed_counts_once():
    """Three budgets, noisy seeds: the fit at a budget's KL is near the mean of its seeds, not their best."""
    frontier = fit_frontier([(0.3, 0.3), (0.3, 0.5), (0.5, 0.4), (0.5, 0.6), (0.7, 0.5), (0.7, 0.7)])
    assert frontier.at(0.5) == pytest.approx(0.5) and frontier.at(0.3) == pytest.approx(0.4)


def test_the_frontiers_noise_comes_from_its_residuals_and_block_sizes():
    alone = fit_frontier([(0.3, 0.3), (0.5, 0.4), (0.7, 0.5)])
    assert alone.residual_df == 0 and np.isnan(alone.residual_variance)  # one run per block: no noise to measure
    pooled = fit_frontier([(0.3, 0.5), (0.31, 0.3), (0.5, 0.6), (0.51, 0.4)])
    assert pooled.block_sizes.tolist() == [2, 2] and pooled.residual_df == 2
    assert pooled.residual_variance == pytest.approx(4 * 0.01 / 2)
    assert pooled.variance_of([0.3]) == pytest.approx(0.02 / 2)  # one block of two: σ² / 2
    assert pooled.variance_of([0.405]) == pytest.approx(0.02 * (0.25 + 0.25) / 2)  # halfway: two blocks, ½ each
    tied = fit_frontier([(0.3, 0.3), (0.3, 0.5), (0.5, 0.4), (0.5, 0.6)])
    assert tied.block_sizes.tolist() == [2, 2] and tied.residual_df == 2  # runs at one KL are one block


def test_a_frontier_needs_grpo_points_and_a_measure_that_exists():
    with pytest.raises(ValueError, match="GRPO has no finished points"):
        fit_frontier([])
    with pytest.raises(ValueError, match="choose one of refusal_after_finetune"):
        measure_named("nope")
    assert MEASURES["drop"].signed(0.3) == -0.3 and MEASURES["refusal_after_finetune"].signed(0.3) == 0.3
