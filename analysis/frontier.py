"""GRPO's frontier: the best robustness after fine-tuning GRPO reaches at each KL moved in RL, as a monotone fit.

A run that moved further from its starting model during RL also keeps more after downstream fine-tuning, so FRPO is
judged against GRPO trained to several budgets (steps, β, learning rate), at the KL FRPO moved. The frontier is fitted
to every GRPO point (one per budget and seed) rather than to budget means, so no point counts for more than one seed:

- The fit is isotonic regression of robustness on KL (non-decreasing: more KL never buys less robustness on the
  frontier). Its blocks of pooled points are placed at their mean KL, and the frontier is linear between them, flat
  from the smallest KL to the first block and from the last block to the largest. An upper envelope of noisy means
  would instead be biased upward, and a step function biased at each step.
- It is defined on [smallest, largest] KL among GRPO's points and never extrapolated beyond them.
- Its noise is the residual variance around the fit; a value of the frontier is a weighted mean of block means, so
  its variance follows from the weights and the block sizes (`variance_of`).
- A measure where lower is better (the drop in refusal, the StrongREJECT score) is fitted with its sign flipped, so
  "higher" always means "more robust" here; `Measure.signed` converts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression

Point = tuple[float, float]  # (KL moved in RL, robustness after downstream fine-tuning), one seed


@dataclass(frozen=True)
class Measure:
    """A robustness measure: which pipeline quantity, and which direction is better."""

    name: str
    label: str
    higher_is_better: bool

    def signed(self, value: float) -> float:
        """``value`` with "higher is more robust" (flipped for a measure where lower is better); its own inverse."""
        return value if self.higher_is_better else -value


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("refusal_after_finetune", "refusal rate after fine-tuning", True),
        Measure("drop", "drop in refusal rate during fine-tuning", False),
        Measure("strongreject_after_finetune", "StrongREJECT score after fine-tuning", False),
        Measure("helpfulness_after_finetune", "helpfulness reward after fine-tuning", True),
    )
}


def measure_named(name: str) -> Measure:
    """The measure called ``name``; a clear error naming the choices otherwise."""
    chosen = MEASURES.get(name)
    if chosen is None:
        raise ValueError(f"measure={name!r}: choose one of {', '.join(MEASURES)}")
    return chosen


@dataclass(frozen=True)
class Frontier:
    """The isotonic fit of GRPO's points (signed: higher is more robust)."""

    knots_kl: np.ndarray  # each block's mean KL, ascending
    knots_value: np.ndarray  # each block's mean robustness, non-decreasing
    block_sizes: np.ndarray  # runs per block
    low: float  # smallest KL among GRPO's points: the frontier is defined on [low, high]
    high: float
    residual_variance: float  # of a GRPO point around the fit; nan when no degree of freedom is left
    residual_df: int  # points − blocks
    points: int

    def covers(self, kl: float) -> bool:
        return self.low <= kl <= self.high

    def at(self, kl: float) -> float | None:
        """The frontier at ``kl``; None outside GRPO's KL range (never extrapolated)."""
        return float(np.interp(kl, self.knots_kl, self.knots_value)) if self.covers(kl) else None

    def curve(self) -> list[Point]:
        """The frontier as a polyline over its whole range, left to right (to draw it)."""
        kls = [self.low, *self.knots_kl.tolist(), self.high]
        kept = [kl for i, kl in enumerate(kls) if i == 0 or kl > kls[i - 1]]
        return [(kl, float(np.interp(kl, self.knots_kl, self.knots_value))) for kl in kept]

    def variance_of(self, kls: Sequence[float]) -> float:
        """The variance of the frontier's mean over ``kls`` (all within its range), given its blocks: each value is
        a weighted mean of at most two block means, each block mean has variance residual_variance / its size."""
        weights = np.zeros(len(self.knots_kl))
        for kl in kls:
            right = int(np.searchsorted(self.knots_kl, kl, side="right"))
            if right == 0 or right == len(self.knots_kl):  # flat beyond the first or the last block
                weights[min(right, len(self.knots_kl) - 1)] += 1.0
                continue
            x0, x1 = self.knots_kl[right - 1], self.knots_kl[right]
            share = (kl - x0) / (x1 - x0)
            weights[right - 1] += 1.0 - share
            weights[right] += share
        weights /= len(kls)
        return float(self.residual_variance * np.sum(weights**2 / self.block_sizes))


def fit_frontier(points: Sequence[Point]) -> Frontier:
    """GRPO's frontier through all its per-seed (KL, signed robustness) points."""
    if not points:
        raise ValueError("GRPO has no finished points: the frontier needs at least one (KL moved, robustness) pair")
    kl, value = np.array(points, dtype=float).T
    kls, which = np.unique(kl, return_inverse=True)  # runs at one KL share one frontier value
    counts = np.bincount(which).astype(float)
    fit = isotonic_regression(np.bincount(which, weights=value) / counts, weights=counts, increasing=True)
    starts = np.asarray(fit.blocks[:-1])
    sizes = np.add.reduceat(counts, starts)
    knots_kl = np.add.reduceat(kls * counts, starts) / sizes
    df = len(kl) - len(sizes)
    residual = float(np.sum((value - fit.x[which]) ** 2) / df) if df > 0 else float("nan")
    return Frontier(knots_kl, fit.x[starts], sizes, float(kls[0]), float(kls[-1]), residual, df, len(kl))
