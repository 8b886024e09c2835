"""What a capability benchmark run returns, whichever suite ran it (lm-eval or the EvalPlus-style code sets)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any


@dataclass(frozen=True)
class BenchmarkResult:
    """One benchmark run: metrics by ``"task/metric"`` (``"task/metric/filter"`` for a filter other than "none"),
    their standard errors under the same keys where given, task and package versions, a hash of each task's evaluated
    data, the generation settings and the per-sample outputs (for artifacts)."""

    suite: str  # "lm-eval" | "evalplus"
    model_path: str
    metrics: dict[str, float]
    stderr: dict[str, float]
    task_versions: dict[str, str]
    package_versions: dict[str, str]
    dataset_hashes: dict[str, str]
    n_samples: dict[str, int]
    generation: dict[str, Any]
    seconds: float
    scorer: str | None = None  # the code sets': which evaluator judged the programs, and in which isolation
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data (for a run's artifacts)."""
        return asdict(self)


def package_versions(*names: str) -> dict[str, str]:
    """``{package: version}`` for those of ``names`` that are installed (a run records what evaluated it)."""
    found = {}
    for name in names:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars become numbers, anything else unknown its ``str``."""
    return json.loads(json.dumps(value, default=lambda obj: obj.item() if hasattr(obj, "item") else str(obj)))
