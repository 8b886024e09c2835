"""One FRPO setting's gap to the frontier at each seed's own KL, with its interval and detectable effect."""

from __future__ import annotations

import statistics

import pytest
from scipy.stats import t as student_t

from analysis.frontier import fit_frontier
from analysis.gap import gap_to

# three budgets of two seeds, each pair out of order: three blocks at KL 0.305, 0.505, 0.705 (0.41, 0.51, 0.56)
GRPO = fit_frontier([(0.3, 0.42), (0.31, 0.40), (0.5, 0.52), (0.51, 0.50), (0.7, 0.57), (0.71, 0.55)])


def test_each_seed_meets_the_frontier_at_its_own_kl():
    gap = gap_to(GRPO, [(0.305, 0.51), (0.505, 0.61)])  # 0.1 above the frontier at both KLs, not at their mean
    assert gap.estimate == pytest.approx(0.1) and gap.inside == gap.seeds == 2


def test_the_interval_adds_the_seeds_spread_and_the_frontiers_noise():
    frpo = [(0.5, 0.6), (0.51, 0.62), (0.52, 0.64)]
    seeds = statistics.variance([y - GRPO.at(kl) for kl, y in frpo]) / 3
    gap = gap_to(GRPO, frpo)
    assert GRPO.residual_variance == pytest.approx(6 * 0.01**2 / 3)
    assert gap.se**2 == pytest.approx(seeds + GRPO.variance_of([0.5, 0.51, 0.52]))
    low, high = gap.interval(0.95)
    assert high - low == pytest.approx(2 * student_t.ppf(0.975, gap.df) * gap.se)
    assert gap.p_above(0.0) < 0.025 < gap.p_below(0.0)
    assert gap.detectable(0.025, 0.8) == pytest.approx(
        (student_t.ppf(0.975, gap.df) + student_t.ppf(0.8, gap.df)) * gap.se
    )


def test_seeds_outside_grpos_range_are_counted_and_left_out_of_the_gap():
    gap = gap_to(GRPO, [(0.5, 0.6), (0.6, 0.65), (0.9, 0.9), (0.1, 0.1)])
    assert (gap.seeds, gap.inside, gap.further, gap.share_inside) == (4, 2, 1, 0.5)
    assert gap.estimate == pytest.approx(statistics.fmean([0.6 - GRPO.at(0.5), 0.65 - GRPO.at(0.6)]))


def test_one_seed_inside_has_an_estimate_but_no_interval():
    gap = gap_to(GRPO, [(0.5, 0.6), (0.95, 0.9)])
    assert gap.estimate is not None and gap.se is None and gap.interval(0.95) is None
    assert gap.p_above(0.0) is None and gap.detectable(0.025, 0.8) is None
    assert gap_to(GRPO, [(0.95, 0.9)]).estimate is None
