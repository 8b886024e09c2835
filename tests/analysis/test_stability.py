import math

import pytest

from analysis.stability import agreement


def verdict(setting="FRPO λ=0.5", gap=0.1, low=0.0, high=0.2, label="inconclusive"):
    return {"setting": setting, "gap": gap, "low": low, "high": high, "label": label}


def test_effects_within_the_interval_of_their_difference_agree():
    (row,) = agreement([verdict(gap=0.10)], [verdict(gap=0.22, low=0.12, high=0.32)])
    assert row.difference == pytest.approx(0.12)
    assert row.bound == pytest.approx(math.hypot(0.1, 0.1))
    assert row.effects_agree


def test_effects_further_apart_than_their_noise_disagree_even_with_the_same_label():
    (row,) = agreement([verdict(gap=0.0, low=-0.05, high=0.05)], [verdict(gap=0.2, low=0.15, high=0.25)])
    assert row.labels_agree and not row.effects_agree


def test_a_label_flipping_at_a_threshold_does_not_make_equal_effects_disagree():
    (row,) = agreement([verdict(label="more robust")], [verdict(gap=0.09, low=-0.01, high=0.19)])
    assert row.effects_agree and not row.labels_agree


def test_a_setting_without_an_interval_agrees_only_with_the_same_answer():
    beyond = verdict(gap=None, low=None, high=None, label="beyond GRPO's reach (0% of seeds inside its KL range)")
    assert agreement([beyond], [beyond])[0].effects_agree
    assert not agreement([beyond], [verdict()])[0].effects_agree
    assert not agreement([verdict()], [beyond])[0].effects_agree


def test_runs_of_different_designs_are_refused_naming_the_setting():
    with pytest.raises(ValueError, match="λ=0.2"):
        agreement([verdict(setting="FRPO λ=0.2")], [verdict()])


def test_a_gap_without_an_interval_is_not_counted_as_agreeing():
    (row,) = agreement([verdict(low=None, high=None)], [verdict()])
    assert row.status == "no interval" and not row.effects_agree


def test_a_gap_in_one_run_only_differs():
    (row,) = agreement([verdict(gap=None, low=None, high=None)], [verdict()])
    assert row.status == "differ"
