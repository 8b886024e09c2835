"""Holm's step-down correction across the λ compared."""

from __future__ import annotations

import pytest

from analysis.holm import holm


def test_holm_multiplies_the_kth_smallest_p_by_the_tests_left_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_holm_caps_at_one_and_leaves_a_single_test_alone():
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([0.02]) == [0.02] and holm([]) == []
