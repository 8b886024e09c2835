"""A job with `report_to` reports to that tracker as well as to the store: TensorBoard event files and an offline
W&B run, each read back with the tracker's own reader."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from frpo_client import Client
from store.specs import TrainSpec
from testkit.service import FAST, get_run, steps_by_key, submit
from workers.runner import execute

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def trained(sqlite_engine, settings):
    """`trained(run_id)`: the queued run executed by the worker's own executor (it must succeed); returns the
    store's logged steps per metric, which must hold every step, whatever trackers the run also reports to."""

    def train(run_id: uuid.UUID) -> dict[str, list[int]]:
        assert execute(run_id, settings, sqlite_engine) == "succeeded"
        steps = steps_by_key(sqlite_engine, run_id)
        max_steps = get_run(sqlite_engine, run_id).spec["max_steps"]
        assert steps["reward"] == list(range(1, max_steps + 1))  # the store got everything, as without trackers
        return steps

    return train


def test_a_run_reports_to_tensorboard_and_to_the_store(sqlite_engine, settings, trained):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run = submit(sqlite_engine, TrainSpec(**{**FAST, "max_steps": 3}, report_to=["tensorboard"]))
    trained(run.id)
    files = sorted(settings.data_dir.rglob("events.out.tfevents.*"))
    assert files, "no TensorBoard event file was written"
    logged = event_accumulator.EventAccumulator(str(files[0].parent)).Reload()
    reward = next(tag for tag in logged.Tags()["scalars"] if tag.endswith("reward"))
    assert [e.step for e in logged.Scalars(reward)] == [1, 2, 3]


def test_a_job_submitted_from_the_cli_reports_to_an_offline_wandb_run(
    runner, empty_api, trained, tmp_path, monkeypatch
):
    pytest.importorskip("wandb")
    wandb_dir = tmp_path / "wandb-home"
    wandb_dir.mkdir()
    for name, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(wandb_dir), "WANDB_SILENT": "true"}.items():
        monkeypatch.setenv(name, value)
    url, seeded = empty_api
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"kind": "train", **FAST, "max_steps": 3, "report_to": ["wandb"]}))
    submitted = runner(url, seeded.submit_key)("submit", str(spec))
    assert submitted.exit_code == 0, submitted.output
    run_id = uuid.UUID(submitted.stdout.strip())

    trained(run_id)

    logged = [row for row in _wandb_history(wandb_dir) if "train/reward" in row]
    stored = Client(url, seeded.read_key).series(str(run_id), ["reward", "loss"])
    for key in ("reward", "loss"):  # the same values at the same steps in W&B and in the store
        assert [row["train/global_step"] for row in logged] == [step for step, _ in stored[key]] == [1, 2, 3]
        assert [row[f"train/{key}"] for row in logged] == pytest.approx([value for _, value in stored[key]])


def _wandb_history(wandb_dir: Path) -> list[dict]:
    """The history rows of the one offline run under `wandb_dir`, as `wandb leet inspect --json` (W&B's own reader
    of its .wandb transaction log) prints them."""
    (run_file,) = wandb_dir.rglob("offline-run-*/run-*.wandb")
    wandb_cli = Path(sys.executable).with_name("wandb")
    printed = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--json", str(run_file)], capture_output=True, text=True, check=True
    ).stdout
    records = [json.loads(line) for line in printed.splitlines()]
    return [record["history"]["item"] for record in records if record["type"] == "history"]
