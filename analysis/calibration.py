"""Does the verdict keep its promises? Synthetic experiments with a known gap, run through `analysis.verdict.compare`.

Each experiment draws GRPO's seeds at several budgets and FRPO's seeds at one KL from a known frontier (robustness
rises linearly with KL), FRPO lying ``gap`` above it, both with the same per-seed noise in robustness and in KL. Over
many experiments: how often the interval covers the true gap (promised: the level), how often the verdict says
"more robust" (at a true gap of 0 promised at most (1 − level) / 2; at a real gap, that is the power).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.verdict import LEVEL, compare


@dataclass(frozen=True)
class Truth:
    """The world the synthetic seeds come from."""

    gap: float  # FRPO's true gap to GRPO's frontier
    seeds: int  # per GRPO budget and per FRPO setting
    sd: float = 0.10  # per-seed noise in robustness
    kl_sd: float = 0.03  # per-seed noise in the KL moved
    budgets: tuple[float, ...] = (0.3, 0.5, 0.7)  # GRPO's mean KL at each budget
    frpo_kl: float = 0.5
    intercept: float = 0.2  # the frontier: intercept + slope × KL
    slope: float = 0.5

    def frontier(self, kl: np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * kl


@dataclass(frozen=True)
class Calibration:
    experiments: int
    coverage: float  # share of intervals holding the true gap
    more_robust: float  # share labelled "more robust"
    mean_detectable: float  # mean effect detectable at 80 % power
    mean_share_inside: float

    def simulation_error(self, rate: float) -> float:
        """The standard error of a rate near ``rate`` estimated from these experiments."""
        return float(np.sqrt(rate * (1 - rate) / self.experiments))


def simulate(truth: Truth, rng: np.random.Generator) -> tuple[dict, dict]:
    """One experiment: (GRPO's per-seed points by budget, FRPO's by setting), as `compare` takes them."""
    grpo = {}
    for budget in truth.budgets:
        kl = budget + truth.kl_sd * rng.standard_normal(truth.seeds)
        grpo[f"KL {budget:g}"] = _points(kl, truth.frontier(kl) + truth.sd * rng.standard_normal(truth.seeds))
    kl = truth.frpo_kl + truth.kl_sd * rng.standard_normal(truth.seeds)
    frpo = {"FRPO": _points(kl, truth.frontier(kl) + truth.gap + truth.sd * rng.standard_normal(truth.seeds))}
    return grpo, frpo


def _points(kl: np.ndarray, value: np.ndarray) -> list[tuple[float, float]]:
    return list(zip(kl.tolist(), value.tolist(), strict=True))


def calibrate(truth: Truth, experiments: int, rng: np.random.Generator, level: float = LEVEL) -> Calibration:
    """``experiments`` synthetic experiments from ``truth``, each judged by `compare`."""
    covered = more = 0
    detectable, share = [], []
    for _ in range(experiments):
        (verdict,) = compare(*simulate(truth, rng), level=level).verdicts
        covered += verdict.low is not None and verdict.low <= truth.gap <= verdict.high
        more += verdict.kind == "more robust"
        detectable.append(verdict.detectable if verdict.detectable is not None else np.nan)
        share.append(verdict.share_inside)
    return Calibration(
        experiments, covered / experiments, more / experiments, float(np.nanmean(detectable)), float(np.mean(share))
    )
