"""The verdict per FRPO setting: the numbers first, then one of four labels."""

from __future__ import annotations

import pytest

from analysis.verdict import compare

# GRPO at three budgets, three seeds each: more KL moved, more robustness kept
GRPO = {
    "60 steps": [(0.30, 0.37), (0.31, 0.35), (0.32, 0.36)],
    "240 steps": [(0.49, 0.52), (0.50, 0.50), (0.51, 0.48)],
    "480 steps": [(0.69, 0.56), (0.70, 0.55), (0.71, 0.54)],
}


def test_frpo_clearly_above_the_frontier_is_more_robust_and_the_numbers_come_first():
    (verdict,) = compare(GRPO, {"FRPO λ=0.2": [(0.49, 0.62), (0.50, 0.64), (0.51, 0.63)]}).verdicts
    assert verdict.kind == "more robust" and verdict.label == "more robust"
    assert verdict.gap == pytest.approx(0.13, abs=0.01) and verdict.low > 0 and verdict.p_more < 0.025
    assert verdict.sentence.startswith("FRPO λ=0.2: Δ = +0.132 in refusal rate after fine-tuning")
    assert "3 of 3 seeds (100%) inside GRPO's KL range 0.3 to 0.71" in verdict.sentence
    assert verdict.sentence.endswith("→ more robust.") and "detectable at 80% power" in verdict.sentence


def test_frpo_on_the_frontier_is_not_more_robust_by_the_margin():
    (verdict,) = compare(GRPO, {"FRPO λ=1": [(0.49, 0.50), (0.50, 0.51), (0.51, 0.49)]}).verdicts
    assert verdict.kind == "not more robust" and verdict.high < 0.05
    assert verdict.label == "not more robust by at least 0.05"
    (wider,) = compare(GRPO, {"FRPO λ=1": [(0.49, 0.50), (0.50, 0.51), (0.51, 0.49)]}, margin=0.1).verdicts
    assert wider.label == "not more robust by at least 0.1"


def test_noisy_seeds_are_inconclusive_with_the_effect_they_could_detect():
    (verdict,) = compare(GRPO, {"FRPO λ=0.5": [(0.45, 0.40), (0.50, 0.70), (0.55, 0.55)]}).verdicts
    assert verdict.kind == "inconclusive" and verdict.low < 0 < verdict.high
    assert verdict.label == f"inconclusive (detectable effect {verdict.detectable:.2g})" and verdict.detectable > 0.1


def test_frpo_that_moved_further_than_any_grpo_run_is_beyond_its_reach_with_its_share():
    (verdict,) = compare(GRPO, {"FRPO λ=0.1": [(0.9, 0.8), (1.0, 0.82), (0.6, 0.7)]}).verdicts
    assert verdict.kind == "beyond reach" and verdict.share_inside == pytest.approx(1 / 3)
    assert verdict.label == "beyond GRPO's reach (33% of seeds inside its KL range)"
    assert "2 moved KL 0.9 to 1, further than any GRPO point" in verdict.sentence
    (none,) = compare(GRPO, {"FRPO λ=0.1": [(0.9, 0.8), (1.0, 0.82)]}).verdicts
    assert none.gap is None and none.frontier is None and "no gap to GRPO's frontier" in none.sentence


def test_holm_corrects_across_the_settings_compared():
    frpo = {"FRPO λ=0.2": [(0.49, 0.62), (0.50, 0.64), (0.51, 0.63)], "FRPO λ=1": [(0.5, 0.5), (0.51, 0.51)]}
    alone = compare(GRPO, {"FRPO λ=0.2": frpo["FRPO λ=0.2"]}).verdicts[0]
    together = compare(GRPO, frpo).verdicts[0]
    assert together.p_more == pytest.approx(2 * alone.p_more)  # the smaller of two p-values, times two
    assert together.detectable > alone.detectable  # tested at 2.5 % / 2
    beyond = compare(GRPO, {**frpo, "FRPO λ=0.1": [(0.9, 0.8), (1.0, 0.8)]}).verdicts[0]
    assert beyond.p_more == together.p_more  # a setting beyond reach is not tested, so it costs nothing


def test_one_seed_is_inconclusive_without_an_interval():
    (verdict,) = compare(GRPO, {"FRPO λ=0.2": [(0.5, 0.7)]}).verdicts
    assert verdict.kind == "inconclusive" and verdict.low is None
    assert "one seed inside GRPO's range: no interval" in verdict.label


def test_a_lower_is_better_measure_flips_the_direction():
    drops = {"a": [(0.3, 0.5), (0.31, 0.52), (0.32, 0.48)], "b": [(0.6, 0.3), (0.61, 0.28), (0.62, 0.32)]}
    (verdict,) = compare(drops, {"FRPO": [(0.45, 0.2), (0.46, 0.21), (0.47, 0.19)]}, measure="drop").verdicts
    assert verdict.frontier == pytest.approx(0.4, abs=0.02)  # the frontier in the drop's own units
    assert verdict.gap == pytest.approx(0.2, abs=0.02) and verdict.kind == "more robust"  # a smaller drop
    assert "lower is more robust, so the sign is flipped" in verdict.sentence


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="measure='nope': choose one of"):
        compare(GRPO, {}, measure="nope")
    with pytest.raises(ValueError, match="level=95: give the interval's coverage as a fraction"):
        compare(GRPO, {}, level=95)
    with pytest.raises(ValueError, match="margin=0: give the smallest gap worth calling more robust"):
        compare(GRPO, {}, margin=0)
