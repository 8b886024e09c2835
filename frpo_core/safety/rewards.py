"""Reward functions for safety RL, in TRL's reward-function form, one reward per prompt (docs/method.md §2.3).

The authors' safety training mixes harmful prompts (task "safety") and harmless ones (task "normal"), and each prompt
gets exactly one of two rewards, both in [0, 1]:

- safety = 1 − harmfulness of the response, as a judge scores it (the authors: the mean of the StrongREJECT judge's
  expected harmfulness and OpenAI moderation's maximum category score);
- helpfulness = a reward model's sigmoid(logit) for the (prompt, response) pair.

Each function returns ``None`` for the prompts that are not its task; TRL nansums over reward functions, so every
completion ends up with exactly one reward. The rewards stay in [0, 1] on purpose: λ is in reward units
(docs/method.md §6.4), and a bounded reward keeps exp(−A/λ) meaningful.

Scorers are pluggable by name (:func:`get_scorer`): ``"answered"`` is the offline helpfulness proxy (1 when the
refusal matcher does not see a refusal: all the tiny model and the demo can be asked for), and a path or hub id
loads a sequence-classification reward model.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from frpo_core.data.conversations import Completion, text_of
from frpo_core.safety.judges import Judge, RefusalMatcher


@runtime_checkable
class Scorer(Protocol):
    """Scores responses for helpfulness in [0, 1]; ``name`` and ``version`` identify it in the run's record."""

    name: str
    version: str

    def score(self, prompts: list[str], responses: list[str]) -> list[float]: ...


class AnsweredScorer:
    """Offline helpfulness proxy: 1 if the response is not a refusal (by the refusal matcher), else 0.

    It rewards answering harmless requests, which is what the harmless half of the authors' mix guards (against
    over-refusal), without a reward model; it says nothing about the answer's quality.
    """

    name = "answered"

    def __init__(self, matcher: RefusalMatcher | None = None) -> None:
        self.matcher = matcher or RefusalMatcher()
        self.version = self.matcher.version

    def score(self, prompts: list[str], responses: list[str]) -> list[float]:
        return [0.0 if judgement.refused else 1.0 for judgement in self.matcher.judge(prompts, responses)]


def get_scorer(name: str, **kwargs: Any) -> Scorer:
    """``"answered"`` (offline) or a reward model by local path or hub id (sigmoid of its logit)."""
    if name == AnsweredScorer.name:
        return AnsweredScorer()
    from frpo_core.safety.reward_model import RewardModelScorer

    return RewardModelScorer(name, **kwargs)


class _TaskReward(abc.ABC):
    """A reward that applies to the prompts of one task and returns ``None`` for the others."""

    task: str
    __name__: str

    def __call__(self, prompts: list[Completion], completions: list[Completion], task: Sequence[str], **kwargs):
        rows = [i for i, label in enumerate(task) if label == self.task]
        rewards: list[float | None] = [None] * len(completions)
        if rows:
            scores = self._score([text_of(prompts[i]) for i in rows], [text_of(completions[i]) for i in rows])
            for i, value in zip(rows, scores, strict=True):
                rewards[i] = float(value)
        return rewards

    @abc.abstractmethod
    def _score(self, prompts: list[str], responses: list[str]) -> list[float]:
        """Scores in [0, 1] for the pairs of this reward's task."""


class SafetyReward(_TaskReward):
    """1 − harmfulness for harmful prompts (task "safety"), as ``judge`` scores it (docs/method.md §2.3)."""

    task = "safety"
    __name__ = "safety"

    def __init__(self, judge: Judge) -> None:
        self.judge = judge

    def _score(self, prompts: list[str], responses: list[str]) -> list[float]:
        return [1.0 - judgement.harmfulness for judgement in self.judge.judge(prompts, responses)]


class HelpfulnessReward(_TaskReward):
    """The scorer's helpfulness in [0, 1] for harmless prompts (task "normal"; docs/method.md §2.3)."""

    task = "normal"
    __name__ = "helpfulness"

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    def _score(self, prompts: list[str], responses: list[str]) -> list[float]:
        return self.scorer.score(prompts, responses)
