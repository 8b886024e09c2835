"""One FRPO setting's gap to GRPO's frontier, with an interval, the effect it could detect, and two one-sided tests.

Each FRPO seed is held against the frontier at the KL that seed moved (not at the setting's mean KL), so the gap
is ``Δ = mean over seeds of (robustness − frontier at its KL)``, in the signed direction (positive: more robust).
Seeds outside GRPO's KL range have no frontier to meet and are left out of Δ; how many were left is the share
inside, reported beside Δ.

Δ's standard error adds the spread of the seeds' gaps (their variance / seeds) and the frontier's own noise at those
KLs (`Frontier.variance_of`, from GRPO's residuals): the two are independent runs. The interval is a Student t
interval with Welch–Satterthwaite degrees of freedom, chosen by calibration on synthetic seeds with a known gap: it
covers at least its stated rate from 3 seeds up (conservatively at 8 to 16 seeds, where the frontier's noise is
overestimated), where a percentile bootstrap over 3 seeds falls well short (``benchmarks/verdict_calibration.py``
prints its figures; `analysis.calibration` runs them).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import t as student_t

from analysis.frontier import Frontier, Point


@dataclass(frozen=True)
class Gap:
    """Δ over the seeds inside GRPO's KL range (signed: positive is more robust), or None where it has no estimate."""

    seeds: int
    inside: int  # seeds whose KL lies within GRPO's range
    further: int  # seeds that moved further than any GRPO point (the rest of the outside ones moved less)
    estimate: float | None
    se: float | None  # None with fewer than two seeds inside, or no GRPO residual to measure its noise
    df: float | None

    @property
    def share_inside(self) -> float:
        return self.inside / self.seeds

    def interval(self, level: float) -> tuple[float, float] | None:
        if self.se is None or self.estimate is None or self.df is None:
            return None
        half = float(student_t.ppf((1 + level) / 2, self.df)) * self.se
        return self.estimate - half, self.estimate + half

    def p_above(self, threshold: float) -> float | None:
        """One-sided p of "Δ ≤ threshold" (small: Δ exceeds it)."""
        return self._tail(threshold, upper=True)

    def p_below(self, threshold: float) -> float | None:
        """One-sided p of "Δ ≥ threshold" (small: Δ falls short of it)."""
        return self._tail(threshold, upper=False)

    def detectable(self, alpha: float, power: float) -> float | None:
        """The smallest true Δ a one-sided test at ``alpha`` finds with probability ``power``, at this error."""
        if self.se is None or self.df is None:
            return None
        return float(student_t.ppf(1 - alpha, self.df) + student_t.ppf(power, self.df)) * self.se

    def _tail(self, threshold: float, *, upper: bool) -> float | None:
        if self.se is None or self.estimate is None or self.df is None:
            return None
        distance = self.estimate - threshold if upper else threshold - self.estimate
        if self.se == 0:
            return 0.0 if distance > 0 else 1.0
        return float(student_t.sf(distance / self.se, self.df))


def gap_to(frontier: Frontier, points: Sequence[Point]) -> Gap:
    """Δ of one FRPO setting's per-seed (KL, signed robustness) ``points`` to ``frontier``."""
    inside = [(kl, value) for kl, value in points if frontier.covers(kl)]
    further = sum(kl > frontier.high for kl, _ in points)
    if not inside:
        return Gap(len(points), 0, further, None, None, None)
    gaps = [value - frontier.at(kl) for kl, value in inside]
    estimate = statistics.fmean(gaps)
    if len(gaps) < 2 or math.isnan(frontier.residual_variance):
        return Gap(len(points), len(inside), further, estimate, None, None)
    seed_part = statistics.variance(gaps) / len(gaps)
    frontier_part = frontier.variance_of([kl for kl, _ in inside])
    se = math.sqrt(seed_part + frontier_part)
    denominator = seed_part**2 / (len(gaps) - 1) + frontier_part**2 / frontier.residual_df
    df = se**4 / denominator if denominator > 0 else math.inf
    return Gap(len(points), len(inside), further, estimate, se, df)
