"""The authors' math RL reward, ``0.2·format + 0.8·correct`` in {0, 0.2, 0.8, 1} (docs/method.md §2.3).

- format: the response contains exactly one ``\\boxed{...}``;
- correct: the (last) boxed answer is mathematically equivalent to the reference answer
  (:class:`frpo_core.math.verifier.MathVerifier`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from frpo_core.data.conversations import text_of
from frpo_core.math.verifier import DEFAULT_TIMEOUT, MathVerifier, boxed_answers, last_boxed, reference_answer

FORMAT_WEIGHT = 0.2
CORRECT_WEIGHT = 0.8


class MathReward:
    """The authors' math reward as a TRL reward function: ``0.2·format + 0.8·correct`` (docs/method.md §2.3).

    ``format`` is 1 when the response has exactly one ``\\boxed{...}``; ``correct`` is 1 when its last boxed answer
    is equivalent to the reference, decided by :class:`MathVerifier`. So a response scores 1 (one boxed answer, right),
    0.8 (right, but boxed more than once), 0.2 (one boxed answer, wrong) or 0 (no boxed answer, or several and the
    last wrong). Every prompt gets this reward (no task split): the reference comes from the dataset's ``answer``
    column when it has one, else from its ``solution`` (:func:`reference_answer`); both reach the function as TRL
    passes dataset columns as keyword arguments.

    The two parts are also logged apart, through TRL's ``log_metric``: ``math/accuracy`` (the share of sampled
    responses whose last boxed answer is right) and ``math/format`` (the share with exactly one box). The reward mixes
    them, and early in RL its rise is mostly format, so only the first says whether RL made the policy more accurate.
    """

    __name__ = "math"

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        format_weight: float = FORMAT_WEIGHT,
        correct_weight: float = CORRECT_WEIGHT,
    ) -> None:
        self.verifier = MathVerifier(timeout)
        self.format_weight = format_weight
        self.correct_weight = correct_weight

    def __call__(
        self,
        prompts: list[Any],
        completions: list[Any],
        answer: Sequence[str | None] | None = None,
        solution: Sequence[str | None] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        references = [
            reference_answer(answer[i] if answer is not None else None, solution[i] if solution is not None else None)
            for i in range(len(completions))
        ]
        parts = [self.parts(text_of(completion), ref) for completion, ref in zip(completions, references, strict=True)]
        if log_metric is not None and parts:
            log_metric("math/format", sum(well_formed for well_formed, _ in parts) / len(parts))
            log_metric("math/accuracy", sum(correct for _, correct in parts) / len(parts))
        return [self.combine(well_formed, correct) for well_formed, correct in parts]

    def parts(self, response: str, reference: str) -> tuple[bool, bool]:
        """Whether ``response`` has exactly one boxed answer, and whether its last boxed answer is ``reference``."""
        boxed = boxed_answers(response)
        correct = bool(boxed) and self.verifier.equivalent(reference, last_boxed(response) or "")
        return len(boxed) == 1, correct

    def combine(self, well_formed: bool, correct: bool) -> float:
        """The reward of a response with these parts: ``format_weight·format + correct_weight·correct``."""
        return self.format_weight * float(well_formed) + self.correct_weight * float(correct)
