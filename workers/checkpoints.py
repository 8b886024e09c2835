"""Where each attempt of a run writes, and which checkpoint the next attempt resumes from.

Each attempt trains in its own folder, `<output_root>/<run id>/attempt-<n>`: an attempt that lost its lease but is
still alive (it will stop at its next refused write, or when its worker's lease deadline kills it) can never
overwrite or half-write a checkpoint that the attempt which took the run over resumes from.

A resume takes the newest checkpoint, over every earlier attempt's folder, whose files load: the trainer state parses,
every safetensors file's header covers the file exactly, every torch file's zip directory is intact. A checkpoint cut
short (SIGKILL mid-save, a full disk) fails one of these and is skipped, so one bad save never makes every resume fail.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path

from store.metrics import Point, points_from_log

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
ATTEMPT = re.compile(r"^attempt-(\d+)$")
TORCH_FILES = (".pt", ".pth", ".bin")


def attempt_dir(output_root: Path, run_id: object, attempt: int) -> Path:
    """The folder attempt `attempt` of run `run_id` trains in (its checkpoints and final model)."""
    return output_root / str(run_id) / f"attempt-{attempt}"


def checkpoint_step(path: Path) -> int:
    return int(CHECKPOINT.match(path.name).group(1))


def checkpoints(run_dir: Path) -> list[Path]:
    """Every checkpoint folder of a run, newest first: by step, then by attempt (a later attempt's save of the same
    step is the newer). The run folder itself counts as attempt 0 (runs trained before attempts had folders)."""
    found: list[tuple[int, int, Path]] = []
    folders = [(0, run_dir)] if run_dir.is_dir() else []
    if run_dir.is_dir():
        folders += [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := ATTEMPT.match(p.name)) and p.is_dir()]
    for attempt, folder in folders:
        for path in folder.iterdir():
            if CHECKPOINT.match(path.name) and path.is_dir():
                found.append((checkpoint_step(path), attempt, path))
    return [path for _, _, path in sorted(found, reverse=True)]


def checkpoint_problem(path: Path) -> str | None:
    """Why checkpoint `path` would not load (a missing or truncated file), or None if every file checks out."""
    state = path / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json (the save did not finish)"
    try:
        json.loads(state.read_text())
    except (ValueError, OSError) as error:
        return f"trainer_state.json does not parse ({error})"
    for file in sorted(path.rglob("*")):
        if file.suffix == ".safetensors" and (problem := _safetensors_problem(file)):
            return f"{file.relative_to(path)}: {problem}"
        if file.suffix in TORCH_FILES and not zipfile.is_zipfile(file):
            return f"{file.relative_to(path)}: not a complete torch archive (truncated?)"
    return None


def _safetensors_problem(file: Path) -> str | None:
    """A safetensors file is an 8-byte header length, a JSON header, then data ending at the largest offset."""
    size = file.stat().st_size
    with open(file, "rb") as handle:
        raw = handle.read(8)
        if len(raw) < 8:
            return "truncated before its header"
        (header_len,) = struct.unpack("<Q", raw)
        if 8 + header_len > size:
            return "truncated inside its header"
        try:
            header = json.loads(handle.read(header_len))
        except ValueError:
            return "header does not parse"
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if 8 + header_len + end != size:
        return f"{size} bytes where its header says {8 + header_len + end} (truncated)"
    return None


def checkpoint_points(checkpoint: Path) -> list[Point]:
    """The metric points a checkpoint's trainer state logged (the history up to its step)."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    points = []
    for entry in state.get("log_history", []):
        if "step" in entry:
            points.extend(points_from_log(entry, int(entry["step"])))
    return points
