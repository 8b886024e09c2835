"""A run's reward functions by name: the safety setting's two, the math reward and the quickstart's toy one.

A job names its rewards (``["safety", "helpfulness"]``, ``["math"]``, ``["share_of_e"]``) and :func:`build_rewards`
builds them as TRL reward functions; :func:`reward_identities` says which judge, reward model or verifier produced
each, for the run's record (docs/method.md §6.10).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from frpo_core.math.reward import MathReward
from frpo_core.safety.judges import get_judge
from frpo_core.safety.rewards import HelpfulnessReward, SafetyReward, get_scorer
from frpo_core.toy.quickstart import share_of_e

REWARD_NAMES = ("safety", "helpfulness", "share_of_e", "math")


def build_rewards(names: Sequence[str], *, judge: str = "refusal-matcher", helpfulness: str = "answered") -> list:
    """TRL reward functions by name; ``judge`` scores the safety reward, ``helpfulness`` names the scorer."""
    builders: dict[str, Callable[[], Any]] = {
        "safety": lambda: SafetyReward(get_judge(judge)),
        "helpfulness": lambda: HelpfulnessReward(get_scorer(helpfulness)),
        "share_of_e": lambda: share_of_e,
        "math": MathReward,
    }
    unknown = [name for name in names if name not in builders]
    if unknown:
        raise ValueError(f"unknown rewards {unknown}; choose from {', '.join(REWARD_NAMES)}")
    return [builders[name]() for name in names]


def reward_identities(rewards: Sequence[Any]) -> dict[str, str]:
    """``{reward name: "scorer@version"}``: which judge or reward model produced each reward, for the run's record."""
    identities = {}
    for reward in rewards:
        source = getattr(reward, "judge", None) or getattr(reward, "scorer", None) or getattr(reward, "verifier", None)
        name = getattr(reward, "__name__", type(reward).__name__)
        identities[name] = f"{source.name}@{source.version}" if source is not None else name
    return identities
