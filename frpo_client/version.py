"""The installed frpo-lab's version, read from its package metadata (one place: pyproject.toml)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version


def version() -> str:
    """`0.1.0`, or `unknown` when the code runs from a folder that was never installed."""
    try:
        return _distribution_version("frpo-lab")
    except PackageNotFoundError:
        return "unknown"
