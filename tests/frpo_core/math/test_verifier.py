"""The math verifier: boxed answers found through nested braces, the reference answer, and a hard time limit on
every comparison."""

from __future__ import annotations

import time

import pytest

from frpo_core.math.verifier import MathVerifier, boxed_answers, format_score, last_boxed, reference_answer


def test_the_hard_limit_kills_a_comparison_that_math_verify_would_let_run():
    # math-verify's own limits are whole seconds (1 here); the verifier's hard limit stops the pair at 0.3 s
    verifier = MathVerifier(timeout=0.3)
    try:
        assert verifier.equivalent("2", "2")  # the worker is up
        start = time.monotonic()
        assert not verifier.equivalent("5", "(10^{6})!")
        assert time.monotonic() - start < 0.9
        assert verifier.equivalent("2", "2")  # a fresh worker takes over
    finally:
        verifier.close()


def test_boxed_answers_match_nested_and_escaped_braces():
    assert boxed_answers("$\\boxed{\\frac{1}{2}}$") == ["\\frac{1}{2}"]
    assert boxed_answers("$\\boxed{\\{1, 2\\}}$") == ["\\{1, 2\\}"]
    assert boxed_answers("\\boxed{\\boxed{1}}") == ["\\boxed{1}", "1"]  # nested boxes are two
    assert boxed_answers("\\boxed{1} and \\boxed{2") == ["1"]  # an unclosed box is no answer
    assert boxed_answers("\\boxed{a}\\boxed{b}") == ["a", "b"]
    assert [format_score(t) for t in ("\\boxed{1}", "\\boxed{1}\\boxed{1}", "1", "\\boxed{\\boxed{1}}")] == [1, 0, 0, 0]
    assert last_boxed("\\fbox{1} then \\boxed{x^{2}}") == "x^{2}"
    assert last_boxed("no box") is None


def test_reference_answer():
    assert reference_answer("  7 ", "\\boxed{8}") == "7"
    assert reference_answer(None, "So $\\boxed{3}$, i.e. $\\boxed{\\frac{6}{2}}$.") == "\\frac{6}{2}"
    assert reference_answer("", "no box here") == "no box here"
    with pytest.raises(ValueError, match="'answer' or a 'solution'"):
        reference_answer(None, None)
