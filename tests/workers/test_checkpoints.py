"""Which checkpoint a resumed attempt starts from: the newest over every attempt's folder whose files load."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from workers.checkpoints import attempt_dir, checkpoint_problem, checkpoints


def save_checkpoint(folder: Path, step: int) -> Path:
    """A checkpoint laid out as the Trainer saves one: weights, optimizer state, trainer state (written last)."""
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"weight": torch.arange(64, dtype=torch.float32)}, path / "model.safetensors")
    torch.save({"state": {0: torch.ones(16)}}, path / "optimizer.pt")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    return path


def truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def test_checkpoints_are_newest_first_over_every_attempts_folder(tmp_path):
    run = tmp_path / "run"
    old = save_checkpoint(run, 2)  # a run trained before attempts had folders
    first = [save_checkpoint(attempt_dir(tmp_path, "run", 1), step) for step in (2, 4)]
    second = save_checkpoint(attempt_dir(tmp_path, "run", 2), 4)
    assert checkpoints(run) == [second, first[1], first[0], old]
    assert checkpoints(tmp_path / "missing") == []


def test_a_complete_checkpoint_loads(tmp_path):
    path = save_checkpoint(tmp_path, 2)
    assert checkpoint_problem(path) is None
    assert load_file(path / "model.safetensors")["weight"].shape == (64,)


def test_a_truncated_weights_file_is_named(tmp_path):
    path = save_checkpoint(tmp_path, 2)
    truncate(path / "model.safetensors")
    assert "model.safetensors" in checkpoint_problem(path) and "truncated" in checkpoint_problem(path)


def test_a_truncated_optimizer_state_is_named(tmp_path):
    path = save_checkpoint(tmp_path, 2)
    truncate(path / "optimizer.pt")
    assert checkpoint_problem(path) == "optimizer.pt: not a complete torch archive (truncated?)"


def test_a_save_cut_short_before_its_trainer_state_is_named(tmp_path):
    path = save_checkpoint(tmp_path, 2)
    (path / "trainer_state.json").unlink()
    assert checkpoint_problem(path) == "no trainer_state.json (the save did not finish)"
    (path / "trainer_state.json").write_text('{"global_step": 2, "log_hi')
    assert checkpoint_problem(path).startswith("trainer_state.json does not parse")
