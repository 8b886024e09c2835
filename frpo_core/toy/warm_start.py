"""The toy safety warm start, shipped as a checkpoint pinned by its SHA-256 instead of trained again by every user.

The toy safety experiment starts its RL from an SFT of the tiny model on ``toy_warm_start`` (the service's
``toy-warm-start`` preset) that refuses harmful toy requests part of the time. Training it costs every demo a job and
gives each machine slightly different weights (CPU kernels round differently), so every verdict rested on a
different starting point. Shipping its bytes gives every machine the same start; the digest is checked each time it
is loaded, so a corrupted or edited copy fails, naming the fix, instead of silently starting another experiment.

``python scripts/build_warm_start.py`` trains it again with the preset's settings on one CPU thread and prints the
digest to pin in :data:`WARM_START_SHA256` (on another machine the bytes, and so the digest, may differ).
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

WARM_START_DIR = "toy_warm_start"  # under frpo_core/assets
WARM_START_SHA256 = "67970a1e0929099e8822f9501053ac4548312b1478945ec6f852ab83ac79a1c9"
"""The digest (:func:`folder_digest`) of the shipped checkpoint's files."""


def folder_digest(folder: str | Path) -> str:
    """SHA-256 over a checkpoint folder's files, names included (sorted): any changed, added or missing file changes
    it, and it does not depend on the folder's own path or the files' dates."""
    folder = Path(folder)
    manifest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        manifest.update(f"{path.relative_to(folder).as_posix()}\0{_file_sha256(path)}\n".encode())
    return manifest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_warm_start() -> Path:
    """The shipped warm start's folder (a plain model directory with its tokenizer), after checking its digest."""
    folder = Path(str(files("frpo_core").joinpath("assets", WARM_START_DIR)))
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"the shipped warm start is missing from {folder}: reinstall frpo-lab (its package data holds it) or "
            "write it with `python scripts/build_warm_start.py`"
        )
    found = folder_digest(folder)
    if found != WARM_START_SHA256:
        raise ValueError(
            f"the shipped warm start in {folder} has SHA-256 {found}, not the pinned {WARM_START_SHA256}: reinstall "
            "frpo-lab, or after rebuilding it on purpose (`python scripts/build_warm_start.py`) pin the digest it "
            "prints in frpo_core/toy/warm_start.py"
        )
    return folder
