"""One run's series, made comparable across runs: smoothing, a choice of x-axis, and the difference from a pinned run.

Pure (no Streamlit, no HTTP). Smoothing is TensorBoard's and W&B's: an exponential moving average with the start-up
bias divided out, so the first points are not pulled towards zero and a weight of 0 draws the raw series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

X_AXES = {"step": "step", "progress": "share of the run (step ÷ its last step)"}


def smooth(values: Sequence[float | None], weight: float) -> list[float | None]:
    """Debiased EMA: s_t = w·s_{t-1} + (1−w)·v_t over the finite values, divided by 1 − w^n (n finite values so far).
    Missing or non-finite values stay missing and do not move the average."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out: list[float | None] = []
    average, seen = 0.0, 0
    for value in values:
        if value is None or not math.isfinite(value):
            out.append(None)
            continue
        average = weight * average + (1.0 - weight) * value
        seen += 1
        out.append(average / (1.0 - weight**seen))
    return out


def x_values(steps: Sequence[int], axis: str) -> list[float]:
    """The x of each point: the step, or its share of the run's last step (runs of different lengths side by side)."""
    if axis == "step":
        return [float(s) for s in steps]
    if axis == "progress":
        last = max(steps, default=0)
        return [s / last if last else 0.0 for s in steps]
    raise ValueError(f"x-axis must be one of {', '.join(X_AXES)}, got {axis!r}")


def minus_reference(
    x: Sequence[float], y: Sequence[float | None], ref_x: Sequence[float], ref_y: Sequence[float | None]
) -> list[float | None]:
    """y minus the reference run's series at the same x (linear between its points; missing outside its range)."""
    known = [(a, b) for a, b in zip(ref_x, ref_y, strict=True) if b is not None and math.isfinite(b)]
    if not known:
        return [None] * len(y)
    kx, ky = np.array([a for a, _ in known]), np.array([b for _, b in known])
    out: list[float | None] = []
    for a, b in zip(x, y, strict=True):
        inside = kx[0] <= a <= kx[-1]
        out.append(None if b is None or not inside else float(b - np.interp(a, kx, ky)))
    return out
