"""Rewards by name: every name builds its TRL reward function, and the run records which scorer made each."""

from __future__ import annotations

import pytest

from frpo_core.jobs.rewards import REWARD_NAMES, build_rewards, reward_identities
from frpo_core.math.reward import MathReward
from frpo_core.safety.judges import RefusalMatcher


def test_build_rewards_by_name_and_identities():
    rewards = build_rewards(["safety", "helpfulness", "share_of_e"])
    assert [getattr(r, "__name__", None) for r in rewards] == ["safety", "helpfulness", "share_of_e"]
    identities = reward_identities(rewards)
    assert identities["safety"] == f"refusal-matcher@{RefusalMatcher().version}"
    assert identities["helpfulness"].startswith("answered@") and identities["share_of_e"] == "share_of_e"
    with pytest.raises(ValueError, match="unknown rewards \\['bogus'\\]"):
        build_rewards(["bogus"])


def test_build_rewards_registers_math():
    assert "math" in REWARD_NAMES
    (math_reward,) = build_rewards(["math"])
    try:
        assert isinstance(math_reward, MathReward) and math_reward.__name__ == "math"
        assert reward_identities([math_reward]) == {"math": f"math-verify@{math_reward.verifier.version}"}
    finally:
        math_reward.verifier.close()
