"""Series made comparable: debiased smoothing, x-axes, differences from a pinned run."""

from __future__ import annotations

import math

import pytest

from dashboard.series import minus_reference, smooth, x_values


def test_a_weight_of_zero_draws_the_raw_series():
    assert smooth([1.0, 5.0, 2.0], 0.0) == [1.0, 5.0, 2.0]


def test_smoothing_is_debiased_so_the_first_point_is_the_first_value():
    smoothed = smooth([4.0, 4.0, 4.0], 0.9)
    assert smoothed == pytest.approx([4.0, 4.0, 4.0])  # a constant stays constant from the first point


def test_smoothing_matches_the_ema_formula():
    w = 0.6
    s1 = (1 - w) * 1.0
    s2 = w * s1 + (1 - w) * 3.0
    assert smooth([1.0, 3.0], w) == pytest.approx([s1 / (1 - w), s2 / (1 - w**2)])


def test_missing_values_stay_missing_and_do_not_move_the_average():
    assert smooth([2.0, None, float("nan"), 2.0], 0.5) == [2.0, None, None, 2.0]


def test_an_out_of_range_weight_is_refused():
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        smooth([1.0], 1.0)


def test_progress_puts_runs_of_different_lengths_on_one_axis():
    assert x_values([0, 50, 100], "progress") == [0.0, 0.5, 1.0]
    assert x_values([0, 10, 20, 40], "progress") == [0.0, 0.25, 0.5, 1.0]
    assert x_values([3], "step") == [3.0]
    with pytest.raises(ValueError, match="x-axis must be one of"):
        x_values([1], "time")


def test_the_difference_interpolates_the_reference_and_stops_at_its_ends():
    diff = minus_reference([0, 5, 10, 20], [1.0, 1.0, None, 1.0], [0, 10], [0.0, 2.0])
    assert diff[0] == pytest.approx(1.0) and diff[1] == pytest.approx(0.0)
    assert diff[2] is None and diff[3] is None  # missing value; beyond the reference's last step
    assert minus_reference([0], [1.0], [0], [math.nan]) == [None]
