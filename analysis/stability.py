"""Does a verdict reproduce? Two runs of the same design (other seeds, or another CPU kernel path) compared per
setting.

Two estimates of one true gap, each with its own interval, agree when their difference lies within the interval of
a difference: |Δa − Δb| ≤ √(ha² + hb²), with h each interval's half-width. For independent runs (disjoint seeds)
that is a test at about the intervals' level; for runs on the same seeds (a kernel change) the estimates are
positively correlated and the bound is conservative. A setting with no interval in one run (beyond the reference's
reach there, say) agrees only if the other run has none either and the two labels are the same: the answer changed
otherwise. Labels are compared and shown too, but the effect is what must agree: a label can flip at a threshold
while the two effects are the same within their noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Agreement:
    """One setting in two runs: the effects with their intervals, and whether they agree."""

    setting: str
    gap_a: float | None
    gap_b: float | None
    half_width_a: float | None
    half_width_b: float | None
    label_a: str
    label_b: str

    @property
    def difference(self) -> float | None:
        return None if self.gap_a is None or self.gap_b is None else self.gap_b - self.gap_a

    @property
    def bound(self) -> float | None:
        """The largest difference two noisy estimates of one gap show at the intervals' level."""
        if self.half_width_a is None or self.half_width_b is None:
            return None
        return math.hypot(self.half_width_a, self.half_width_b)

    @property
    def effects_agree(self) -> bool:
        return self.status == "agree"

    @property
    def status(self) -> str:
        """ "agree", "differ", or "no interval": a gap without an interval (too few seeds inside the reference's
        range) cannot be shown to agree, and is not counted as agreeing."""
        if self.gap_a is None and self.gap_b is None:
            return "agree" if self.label_a == self.label_b else "differ"
        if self.gap_a is None or self.gap_b is None:
            return "differ"  # a gap in one run only: one answer has a number, the other none
        if self.bound is None:
            return "no interval"
        return "agree" if abs(self.gap_b - self.gap_a) <= self.bound else "differ"

    @property
    def labels_agree(self) -> bool:
        return self.label_a == self.label_b


def agreement(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> list[Agreement]:
    """Each setting of run `a` against the same setting of run `b` (verdicts as `frpo demo --results` writes them:
    setting, gap, low, high, label). A setting missing from `b` is an error, not a silent skip."""
    theirs = {verdict["setting"]: verdict for verdict in b}
    missing = [verdict["setting"] for verdict in a if verdict["setting"] not in theirs]
    if missing:
        raise ValueError(f"settings {missing} are in one run and not the other: compare runs of the same design")
    return [
        Agreement(
            ours["setting"],
            ours["gap"],
            theirs[ours["setting"]]["gap"],
            _half_width(ours),
            _half_width(theirs[ours["setting"]]),
            ours["label"],
            theirs[ours["setting"]]["label"],
        )
        for ours in a
    ]


def _half_width(verdict: Mapping[str, Any]) -> float | None:
    if verdict["low"] is None or verdict["high"] is None:
        return None
    return (verdict["high"] - verdict["low"]) / 2
