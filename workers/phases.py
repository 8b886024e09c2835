"""Where a training child's time went, kept on its run as `time/<phase>` metrics (seconds, at step 0).

A job's wall time splits into a fixed part that every job pays whatever it trains (the process start and imports,
loading data and the model, building the trainer, saving) and the part that scales with its steps (training, the
in-loop evaluation). The phases are measured in the child itself (so they are the same whether it was spawned or
forked from the worker's template, workers.template) and written beside the run's other metrics, where the API
(`GET /jobs/{id}/metrics`), the CLI and `frpo demo`'s closing table read them.

    start       process creation until the child's code runs (interpreter start and the runner's own imports)
    imports     the ML stack (torch, transformers, trl, datasets, frpo_core's jobs): ~0 when forked from a template
    data        loading and tokenising the job's prompts or examples
    trainer     building the trainer, the model's load and the evaluator's (with its reference model) included
    train       the optimiser steps, less the in-loop evaluation
    evaluation  the safety evaluations (step 0, every `eval.every` steps, the end) and an evaluate job's benchmarks
    save        the final model written and hashed
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from store.metrics import TIME_PHASES, TIME_PREFIX

PHASES, PREFIX = TIME_PHASES, TIME_PREFIX


def process_age() -> float:
    """Seconds since this process was created (its fork, for a spawned child the fork before its exec), from /proc."""
    with open("/proc/self/stat") as stat:
        started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks
    with open("/proc/uptime") as uptime:
        now = float(uptime.read().split()[0])
    return max(now - started_ticks / os.sysconf("SC_CLK_TCK"), 0.0)


class PhaseClock:
    """Seconds per phase of one child; a phase entered twice adds up. `points()` gives them as metric points."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, phase: str, seconds: float) -> None:
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    @contextmanager
    def phase(self, phase: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - began)

    def timed(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function`, its calls counted to `phase` (and taken out of the phase that encloses them, see `points`)."""

        def call(*args: Any, **kwargs: Any) -> Any:
            with self.phase(phase):
                return function(*args, **kwargs)

        return call

    def metrics(self, nested: dict[str, str] | None = None) -> dict[str, float]:
        """The phases as `time/<phase>` seconds; `nested` maps an inner phase to the one whose timer also ran
        meanwhile (the evaluation runs inside `trainer.train()`), which is reported net of it."""
        seconds = dict(self.seconds)
        for inner, outer in (nested or {}).items():
            if inner in seconds and outer in seconds:
                seconds[outer] = max(seconds[outer] - seconds[inner], 0.0)
        return {PREFIX + phase: value for phase, value in seconds.items()}
