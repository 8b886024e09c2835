"""The shipped toy files and the functions that make them: ``python -m frpo_core.toy`` writes them all again.

Each file under ``frpo_core/assets`` that a toy function builds is listed here once, with its builder, so a test can
check every shipped file against the code that claims to have made it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from frpo_core.toy.arithmetic import toy_math_rows, toy_math_warm_start_rows
from frpo_core.toy.safety import warm_start_rows


def _toy_arith_docs() -> list[dict[str, Any]]:
    """The toy MATH500 (the lm-eval task ``toy_arith``): ``toy_math``'s problems, asked as RL asks them."""
    return [{"question": row["problem"], "answer": row["answer"]} for row in toy_math_rows(0)]


SHIPPED: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "toy_warm_start.jsonl": warm_start_rows,
    "toy_math.jsonl": toy_math_rows,
    "toy_math_warm_start.jsonl": toy_math_warm_start_rows,
    "lm_eval_tasks/toy_arith/toy_arith.jsonl": _toy_arith_docs,
}
"""Shipped file (relative to ``frpo_core/assets``) → the function whose rows it holds, with its default arguments."""


def asset_path(name: str) -> Path:
    """Where the shipped file ``name`` lies in the installed package."""
    return Path(str(files("frpo_core").joinpath("assets")), name)


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` as JSON lines, one object per line (the shipped files' format)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def write_shipped(root: str | Path | None = None) -> list[Path]:
    """Write every file of :data:`SHIPPED` from its builder under ``root`` (the package's assets by default); returns
    the paths written."""
    return [
        write_jsonl(Path(root, name) if root is not None else asset_path(name), build())
        for name, build in SHIPPED.items()
    ]
