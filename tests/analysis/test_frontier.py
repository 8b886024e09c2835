"""GRPO's frontier and FRPO's gap to it, on hand-made points with known answers."""

from __future__ import annotations

import pytest

from analysis.frontier import compare, envelope_at, upper_hull

# GRPO at three budgets, three seeds each: more KL moved, more robustness kept (docs/method.md §7's shape)
GRPO = {
    "60 steps": [(0.30, 0.35), (0.40, 0.37), (0.35, 0.36)],
    "240 steps": [(0.45, 0.50), (0.50, 0.52), (0.55, 0.48)],
    "480 steps": [(0.60, 0.55), (0.62, 0.56), (0.58, 0.54)],
}


def test_upper_hull_keeps_the_envelope_and_drops_points_under_it():
    hull = upper_hull([(0, 0), (1, 1), (2, 1.2), (1.5, 0.5), (3, 1.3), (1, 0.2)])
    assert hull == [(0, 0), (1, 1), (2, 1.2), (3, 1.3)]
    assert upper_hull([(0, 0), (1, 1), (2, 2)]) == [(0, 0), (2, 2)]  # collinear: the middle point adds nothing
    assert envelope_at(hull, 0.5) == pytest.approx(0.5) and envelope_at(hull, 2.5) == pytest.approx(1.25)
    assert envelope_at(hull, -0.1) is None and envelope_at(hull, 3.01) is None
    assert envelope_at([(1.0, 0.4)], 1.0) == 0.4


def test_frpo_above_the_frontier():
    result = compare(GRPO, {"FRPO λ=0.2": [(0.45, 0.62), (0.50, 0.64), (0.55, 0.63)]})
    (verdict,) = result.verdicts
    assert verdict.status == "above" and verdict.low > 0
    assert verdict.frontier == pytest.approx(0.50) and verdict.gap == pytest.approx(0.13)
    assert "above the frontier" in verdict.sentence and "3 seeds" in verdict.sentence
    assert [x for x, _ in result.hull] == pytest.approx([0.35, 0.5, 0.6])


def test_frpo_below_the_frontier():
    (verdict,) = compare(GRPO, {"FRPO λ=1": [(0.55, 0.40), (0.60, 0.42), (0.58, 0.41)]}).verdicts
    assert verdict.status == "below" and verdict.high < 0 and verdict.gap < 0
    assert "below the frontier" in verdict.sentence


def test_frpo_that_only_trained_harder_lies_on_the_frontier():
    """A point that sits on GRPO's envelope (it moved further, and kept what GRPO keeps at that KL)."""
    on = {"FRPO λ=0.5": [(0.5, 0.51), (0.5, 0.51)]}
    grpo = {"a": [(0.4, 0.41)], "b": [(0.6, 0.61)]}
    (verdict,) = compare(grpo, on).verdicts
    assert verdict.gap == pytest.approx(0.0, abs=1e-12) and verdict.status == "on"
    assert "no more robust than GRPO trained to the same KL" in verdict.sentence


def test_outside_the_range_is_reported_never_extrapolated():
    (verdict,) = compare(GRPO, {"FRPO λ=0.1": [(0.9, 0.8), (1.0, 0.82)]}).verdicts
    assert verdict.status == "outside" and verdict.gap is None and verdict.frontier is None
    assert "outside the frontier's range" in verdict.sentence and verdict.sentence.startswith("FRPO λ=0.1: ")


def test_overlapping_seeds_are_indistinguishable():
    noisy = {"FRPO λ=0.5": [(0.45, 0.40), (0.50, 0.62), (0.55, 0.55)]}
    (verdict,) = compare(GRPO, noisy).verdicts
    assert verdict.status == "indistinguishable" and verdict.low < 0 < verdict.high


def test_one_seed_has_no_interval():
    (verdict,) = compare(GRPO, {"FRPO λ=0.2": [(0.5, 0.7)]}).verdicts
    assert verdict.seeds == 1 and "one seed: no interval" in verdict.sentence


def test_a_lower_is_better_measure_flips_the_direction():
    drops = {"a": [(0.3, 0.5)], "b": [(0.6, 0.3)]}  # GRPO: more KL, smaller drop
    (verdict,) = compare(drops, {"FRPO": [(0.45, 0.2), (0.45, 0.2)]}, measure="drop").verdicts
    assert verdict.frontier == pytest.approx(0.4)  # the frontier of the best (smallest) drop, in the drop's units
    assert verdict.gap == pytest.approx(0.2) and verdict.status == "above"  # a smaller drop is more robust
    with pytest.raises(ValueError, match="choose one of"):
        compare(drops, {}, measure="nope")


def test_the_bootstrap_is_reproducible():
    frpo = {"FRPO": [(0.45, 0.55), (0.5, 0.6), (0.55, 0.5)]}
    assert compare(GRPO, frpo, seed=3).verdicts == compare(GRPO, frpo, seed=3).verdicts
