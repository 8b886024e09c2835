"""The math reward: 0.2·format + 0.8·correct, its parts logged apart, and no answer that can stall it."""

from __future__ import annotations

import time

import pytest

from frpo_core.math.data import load_math
from frpo_core.math.reward import MathReward
from tests.frpo_core.rows import said


@pytest.fixture(scope="module")
def reward():
    math_reward = MathReward(timeout=3.0)
    yield math_reward
    math_reward.verifier.close()


SOLUTION = "Half of the cake is left, so the answer is $\\boxed{\\frac{1}{2}}$."


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("So the share is $\\boxed{\\frac{1}{2}}$.", 1.0),  # one boxed answer, right
        ("That is $\\boxed{0.5}$.", 1.0),  # right in another form: math-verify decides equivalence
        ("First $\\boxed{3}$, no: $\\boxed{\\dfrac{1}{2}}$.", 0.8),  # right, but boxed twice: no format credit
        ("So the share is $\\boxed{\\frac{1}{3}}$.", 0.2),  # one boxed answer, wrong
        ("The answer is 1/2.", 0.0),  # right, but never boxed
        ("$\\boxed{\\frac{1}{2}}$ or $\\boxed{3}$", 0.0),  # two boxed answers, the last wrong
    ],
)
def test_reward_values(reward, response, expected):
    assert reward(["p"], [said(response)], solution=[SOLUTION]) == [expected]


def test_reward_prefers_the_answer_column_and_takes_trl_keyword_columns(reward):
    completions = [said("$\\boxed{12}$"), said("$\\boxed{13}$"), "plain text $\\boxed{x+1}$"]
    rewards = reward(
        ["a", "b", "c"],
        completions,
        answer=["12", "12", "1+x"],
        solution=["wrong \\boxed{99}", "wrong \\boxed{99}", ""],
        level=[3, 3, 4],
        type=["Algebra"] * 3,
    )
    assert rewards == [1.0, 0.2, 1.0]


def test_reward_logs_accuracy_and_format_apart_through_trls_log_metric(reward):
    """The reward mixes format and correctness; each is also logged as its share of the batch."""
    logged: dict[str, float] = {}
    completions = [said("$\\boxed{12}$"), said("$\\boxed{13}$"), said("$\\boxed{3}$ then $\\boxed{12}$"), said("12")]
    rewards = reward(["p"] * 4, completions, answer=["12"] * 4, log_metric=logged.__setitem__)
    assert rewards == [1.0, 0.2, 0.8, 0.0]
    assert logged == {"math/accuracy": 0.5, "math/format": 0.5}  # right: the 1st and 3rd; one box: the 1st and 2nd


def test_a_pathological_answer_returns_within_the_time_limit(reward):
    reward(["p"], [said("$\\boxed{1}$")], answer=["1"])  # the worker is up
    start = time.monotonic()
    assert reward(["p"], [said("$\\boxed{9^{9^{9^{9}}}}$")], answer=["5"]) == [0.2]
    assert time.monotonic() - start < reward.verifier.timeout + 1.0


def test_load_toy_math_offline_keeps_every_problem(reward):
    data = load_math("toy_math")  # "auto" decontamination skips shipped synthetic sets: no hub needed
    assert len(data.dataset) == 100 and data.removed == 0 and data.reference is None
    assert sorted(set(data.dataset["level"])) == [3, 4]
    assert max(len(answer) for answer in data.dataset["answer"]) <= 2  # within the tiny model's reach
    sample = data.dataset.select(range(20))
    rewards = reward(sample["prompt"], [said(s) for s in sample["solution"]], answer=sample["answer"])
    assert rewards == [1.0] * 20  # each worked solution earns the full reward
