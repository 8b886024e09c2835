"""Outside experiment trackers a job may also report to (TRL's `report_to`), checked before a trainer is built.

The caller's own sink (the service's store) always receives everything; trackers are in addition. Each is configured
by its own environment on the machine that trains (wandb: WANDB_MODE=offline or WANDB_API_KEY; mlflow:
MLFLOW_TRACKING_URI, a file:// folder offline; trackio: a local dashboard by default; tensorboard: event files in the
run's folder). A tracker that is not installed would otherwise fail deep inside transformers' callback setup, after
the model loaded: here it fails first, naming what to install.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

TRACKERS = {"wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio", "tensorboard": "tensorboard"}


def report_to_setting(trackers: Sequence[str]) -> list[str] | str:
    """TRL's `report_to` for these trackers ("none" for none), after checking each is known and installed."""
    unknown = [name for name in trackers if name not in TRACKERS]
    if unknown:
        raise ValueError(f"report_to: unknown tracker(s) {unknown}; choose from {', '.join(TRACKERS)}")
    missing = [name for name in trackers if importlib.util.find_spec(TRACKERS[name]) is None]
    if missing:
        raise ValueError(
            f"report_to names {', '.join(missing)}, not installed where this job trains: pip install "
            f"{' '.join(TRACKERS[name] for name in missing)} into the worker's environment, or leave it out"
        )
    return list(trackers) or "none"
