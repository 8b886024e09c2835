"""Robustness against the KL moved in RL, with GRPO's frontier: is FRPO more robust, or did it only train harder?

docs/method.md §7: a run that moved further from its starting model during RL also keeps more refusal after downstream
fine-tuning, so a comparison at equal steps cannot tell "more robust" from "trained harder". The fair comparison
gives GRPO several budgets (steps, β, learning rate), so that its runs trace a frontier of (KL moved, robustness
after fine-tuning), and asks where each FRPO λ lies relative to it *at the KL it moved*.

- GRPO's frontier is the upper envelope (upper convex hull) of its budget points, each the mean over its seeds: the
  best robustness GRPO reaches at a given KL, mixing budgets where it lies between two of them; between its points it
  is linear in KL. It is defined only on [smallest, largest] KL among those points and never extrapolated.
- For each FRPO λ, the gap is (its mean robustness) − (the frontier at its mean KL). The interval is a percentile
  bootstrap over seeds: each resample draws seeds with replacement within every GRPO budget and within the FRPO
  setting, rebuilds the frontier and recomputes the gap.
- A measure where lower is better (the drop in refusal, the StrongREJECT score) is compared with its sign flipped,
  so "above the frontier" always means "more robust than GRPO at the same KL".
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Point = tuple[float, float]  # (KL moved in RL, robustness after downstream fine-tuning), one seed


@dataclass(frozen=True)
class Measure:
    """A robustness measure: which pipeline quantity, and which direction is better."""

    name: str
    label: str
    higher_is_better: bool


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("refusal_after_finetune", "refusal rate after fine-tuning", True),
        Measure("drop", "drop in refusal rate during fine-tuning", False),
        Measure("strongreject_after_finetune", "StrongREJECT score after fine-tuning", False),
        Measure("helpfulness_after_finetune", "helpfulness reward after fine-tuning", True),
    )
}


def upper_hull(points: Sequence[Point]) -> list[Point]:
    """The upper convex hull of ``points``, left to right (Andrew's monotone chain). Points sharing a KL keep the
    best; collinear points are dropped (they change nothing on a piecewise-linear envelope)."""
    best: dict[float, float] = {}
    for x, y in points:
        best[x] = max(y, best.get(x, -math.inf))
    hull: list[Point] = []
    for point in sorted(best.items()):
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], point) >= 0:
            hull.pop()
        hull.append(point)
    return hull


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def envelope_at(hull: Sequence[Point], kl: float) -> float | None:
    """The envelope's value at ``kl`` (linear between hull points); None outside its KL range."""
    if not hull or kl < hull[0][0] or kl > hull[-1][0]:
        return None
    for (x0, y0), (x1, y1) in zip(hull, hull[1:], strict=False):
        if x0 <= kl <= x1:
            return y0 + (y1 - y0) * (kl - x0) / (x1 - x0)
    return hull[0][1]  # a single point: the range is that one KL


def _means(budgets: Mapping[str, Sequence[Point]]) -> list[Point]:
    return [
        (statistics.fmean(x for x, _ in seeds), statistics.fmean(y for _, y in seeds))
        for seeds in budgets.values()
        if seeds
    ]


@dataclass(frozen=True)
class Verdict:
    """Where one FRPO setting lies relative to GRPO's frontier, in the measure's own units and direction."""

    label: str
    kl: float
    robustness: float
    frontier: float | None  # the frontier at this KL; None when outside its range
    gap: float | None  # robustness − frontier (sign flipped when lower is better); None when outside
    low: float | None
    high: float | None
    seeds: int
    status: str  # "above", "below", "on", "indistinguishable", "outside"
    sentence: str


@dataclass(frozen=True)
class Frontier:
    measure: Measure
    grpo_points: list[Point]  # one per budget: the mean over its seeds
    hull: list[Point]
    verdicts: list[Verdict]


def compare(
    grpo: Mapping[str, Sequence[Point]],
    frpo: Mapping[str, Sequence[Point]],
    *,
    measure: str = "refusal_after_finetune",
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Frontier:
    """GRPO's frontier from its budgets (``{budget label: per-seed points}``) and a verdict for each FRPO setting
    (``{label: per-seed points}``), with a ``level`` bootstrap interval from ``resamples`` resamples."""
    chosen = MEASURES.get(measure)
    if chosen is None:
        raise ValueError(f"measure={measure!r}: choose one of {', '.join(MEASURES)}")
    sign = 1.0 if chosen.higher_is_better else -1.0
    grpo_signed = {k: [(x, sign * y) for x, y in v] for k, v in grpo.items() if v}
    if not grpo_signed:
        raise ValueError("GRPO has no finished budget points: the frontier needs at least one")
    hull = upper_hull(_means(grpo_signed))
    rng = random.Random(seed)
    verdicts = [
        _verdict(label, [(x, sign * y) for x, y in points], grpo_signed, hull, sign, chosen, resamples, level, rng)
        for label, points in frpo.items()
        if points
    ]
    return Frontier(chosen, [(x, sign * y) for x, y in _means(grpo_signed)], [(x, sign * y) for x, y in hull], verdicts)


def _resample(points: Sequence[Point], rng: random.Random) -> list[Point]:
    return [points[rng.randrange(len(points))] for _ in points]


def _verdict(
    label: str,
    points: list[Point],
    grpo: Mapping[str, Sequence[Point]],
    hull: list[Point],
    sign: float,
    measure: Measure,
    resamples: int,
    level: float,
    rng: random.Random,
) -> Verdict:
    (kl, y), n = _means({label: points})[0], len(points)
    at = envelope_at(hull, kl)
    if at is None:
        lo, hi = hull[0][0], hull[-1][0]
        sentence = (
            f"{label}: moved KL {kl:.3g}, outside the frontier's range (GRPO's budgets reach KL {lo:.3g} to "
            f"{hi:.3g}); no verdict without extrapolating: give GRPO a budget that reaches this KL."
        )
        return Verdict(label, kl, sign * y, None, None, None, None, n, "outside", sentence)
    gap = y - at
    gaps = []
    for _ in range(resamples):
        boot_hull = upper_hull(_means({k: _resample(v, rng) for k, v in grpo.items()}))
        (bkl, by) = _means({label: _resample(points, rng)})[0]
        boot_at = envelope_at(boot_hull, bkl)
        if boot_at is not None:
            gaps.append(by - boot_at)
    low, high = _percentiles(gaps, level) if gaps else (gap, gap)
    status = _status(gap, low, high)
    sentence = _sentence(label, measure, kl, gap, low, high, n, status, level)
    return Verdict(label, kl, sign * y, sign * at, gap, low, high, n, status, sentence)


def _percentiles(values: list[float], level: float) -> tuple[float, float]:
    ordered = sorted(values)
    tail = (1 - level) / 2
    return ordered[round(tail * (len(ordered) - 1))], ordered[round((1 - tail) * (len(ordered) - 1))]


def _status(gap: float, low: float, high: float, tolerance: float = 1e-12) -> str:
    if abs(gap) <= tolerance and abs(high - low) <= tolerance:
        return "on"
    if low > 0:
        return "above"
    if high < 0:
        return "below"
    return "indistinguishable"


def _sentence(
    label: str, measure: Measure, kl: float, gap: float, low: float, high: float, n: int, status: str, level: float
) -> str:
    better = "more robust" if gap >= 0 else "less robust"
    what = f"{abs(gap):.3g} {better} than GRPO's frontier at the same KL ({kl:.3g}) in {measure.label}"
    interval = f"{level:.0%} interval {low:+.3g} to {high:+.3g} over {n} seeds" if n > 1 else "one seed: no interval"
    conclusion = {
        "above": "above the frontier: more robust, not only trained harder",
        "below": "below the frontier: GRPO with a matching budget keeps more",
        "on": "on the frontier: no more robust than GRPO trained to the same KL",
        "indistinguishable": "not distinguishable from the frontier with these seeds",
    }[status]
    return f"{label}: {what} ({interval}); {conclusion}."
