"""Holm's step-down correction: several λ tested against one frontier, one family-wise error rate.

Testing each λ at 2.5 % would call one of them "more robust" by chance far more often than 2.5 % once several are
compared. Holm's adjustment keeps the chance of any false claim in the family at the stated level and is never less
powerful than Bonferroni's.
"""

from __future__ import annotations

from collections.abc import Sequence


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: the k-th smallest is multiplied by (m − k + 1), then made
    non-decreasing along that order and capped at 1."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
