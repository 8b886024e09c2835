"""A job with `report_to` reports to that tracker as well as to the store: TensorBoard event files, read back."""

from __future__ import annotations

import pytest

from store.specs import TrainSpec
from testkit.service import FAST, steps_by_key, submit
from workers import runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_run_reports_to_tensorboard_and_to_the_store(sqlite_engine, settings):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run = submit(sqlite_engine, TrainSpec(**{**FAST, "max_steps": 3}, report_to=["tensorboard"]))
    assert runner.execute(run.id, settings, sqlite_engine) == "succeeded"
    files = sorted(settings.data_dir.rglob("events.out.tfevents.*"))
    assert files, "no TensorBoard event file was written"
    logged = event_accumulator.EventAccumulator(str(files[0].parent)).Reload()
    reward = next(tag for tag in logged.Tags()["scalars"] if tag.endswith("reward"))
    assert [e.step for e in logged.Scalars(reward)] == [1, 2, 3]
    assert steps_by_key(sqlite_engine, run.id)["reward"] == [1, 2, 3]  # the store got everything as before
