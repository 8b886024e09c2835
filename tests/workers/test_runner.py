"""`runner.execute` called directly (no broker) on the embedded SQLite store, training the tiny model for real."""

from __future__ import annotations

import shutil
import threading

import pytest
from sqlalchemy import select

from store.db import session_scope
from store.models import Artifact, Event, Run, RunStatus
from store.specs import EvalSpec, FinetuneSpec, TrainSpec
from testkit.service import (
    FAST,
    SLOW,
    cancel_after_first_checkpoint,
    create_run,
    get_run,
    steps_by_key,
    submit,
    training_processes,
)
from workers import runner

pytestmark = pytest.mark.slow


def test_execute_trains_records_and_never_runs_twice(sqlite_engine, settings):
    run_id = create_run(sqlite_engine, **FAST)
    assert runner.execute(run_id, settings, sqlite_engine) == "succeeded"

    run = get_run(sqlite_engine, run_id)
    assert run.status == RunStatus.succeeded and run.attempts == 1 and run.progress == 1.0
    steps = steps_by_key(sqlite_engine, run_id)
    for key in ("reward", "robust_reward", "loss", "step_time"):
        assert steps[key] == [1, 2, 3, 4, 5, 6], key
    with session_scope(sqlite_engine) as session:
        artifacts = session.scalars(select(Artifact).where(Artifact.run_id == run_id).order_by(Artifact.id)).all()
    checkpoints = [a for a in artifacts if a.kind == "checkpoint"]
    assert [a.step for a in checkpoints] == [2, 4, 6]
    assert all(len(a.sha256) == 64 and a.size_bytes > 0 for a in artifacts)
    assert [a.kind for a in artifacts if a.kind != "checkpoint"] == ["model"]
    assert (settings.output_root / "models" / "tiny" / "config.json").is_file()

    # a redelivered message: the run is finished, nothing happens
    assert runner.execute(run_id, settings, sqlite_engine) == "succeeded"
    assert get_run(sqlite_engine, run_id).attempts == 1


def test_execute_cancel_stops_training(sqlite_engine, settings):
    run_id = create_run(sqlite_engine, **SLOW)

    thread = threading.Thread(target=cancel_after_first_checkpoint, args=(sqlite_engine, run_id))
    thread.start()
    assert runner.execute(run_id, settings, sqlite_engine) == "cancelled"
    thread.join()
    run = get_run(sqlite_engine, run_id)
    assert run.status == RunStatus.cancelled and run.progress < 1.0
    with session_scope(sqlite_engine) as session:
        messages = session.scalars(select(Event.message).where(Event.run_id == run_id)).all()
    assert any("stopping the training process group" in m for m in messages)
    assert training_processes(run_id) == []


def test_resume_from_checkpoint_rewrites_nothing_twice(sqlite_engine, settings):
    """A first attempt that died after checkpoint-4 (simulated: its output folder is kept, its lease expired)."""
    run_id = create_run(sqlite_engine, **FAST)
    assert runner.execute(run_id, settings, sqlite_engine) == "succeeded"
    assert "resumed from attempt-1/checkpoint-4" in rerun_after_checkpoint_4(sqlite_engine, settings, run_id)
    assert steps_by_key(sqlite_engine, run_id)["reward"] == [1, 2, 3, 4, 5, 6]


def rerun_after_checkpoint_4(engine, settings, run_id) -> list[str]:
    """Simulate a first attempt that died after checkpoint-4 (its output folder kept, its lease expired), run the job
    again, and return the run's event messages."""
    first, second = (settings.output_root / str(run_id) / f"attempt-{n}" for n in (1, 2))
    for name in ("checkpoint-6", "final"):
        shutil.rmtree(first / name)
    with session_scope(engine) as session:
        session.get(Run, run_id).status = RunStatus.queued
    assert runner.execute(run_id, settings, engine) == "succeeded"
    assert get_run(engine, run_id).attempts == 2
    assert (second / "checkpoint-6").is_dir()  # trained to the end again, in its own folder…
    assert not (second / "checkpoint-2").exists()  # …from step 4, not 0
    assert not (first / "checkpoint-6").exists()  # the first attempt's folder is never written again
    with session_scope(engine) as session:
        return list(session.scalars(select(Event.message).where(Event.run_id == run_id)).all())


def test_a_finetune_job_resumes_from_its_checkpoint(sqlite_engine, settings):
    evaluation = EvalSpec(n_harmful=4, n_harmless=4, every=2, max_new_tokens=4)
    run_id = submit(sqlite_engine, FinetuneSpec(model="tiny", max_steps=6, save_steps=2, eval=evaluation)).id
    assert runner.execute(run_id, settings, sqlite_engine) == "succeeded"
    first = steps_by_key(sqlite_engine, run_id)
    assert "resumed from attempt-1/checkpoint-4" in rerun_after_checkpoint_4(sqlite_engine, settings, run_id)
    steps = steps_by_key(sqlite_engine, run_id)
    assert steps["loss"] == [1, 2, 3, 4, 5, 6] and steps["eval/refusal_rate"] == [0, 2, 4, 6]
    assert steps == first  # the same points, each once: the resumed attempt overwrote, never appended


def test_a_training_error_fails_the_run_with_its_message(sqlite_engine, settings):
    run_id = create_run(sqlite_engine, **FAST, trl={"steps_per_generation": 2})  # FRPOConfig refuses this
    assert runner.execute(run_id, settings, sqlite_engine) == "failed"
    run = get_run(sqlite_engine, run_id)
    assert run.status == RunStatus.failed and "steps_per_generation" in run.error
    with session_scope(sqlite_engine) as session:
        failure = session.scalar(select(Event).where(Event.run_id == run_id, Event.message == "training failed"))
    assert "Traceback" in failure.data["log_tail"]
    assert training_processes(run_id) == []


def test_a_baseline_of_another_trl_loss_type_trains_through_the_service(sqlite_engine, settings):
    run = submit(sqlite_engine, TrainSpec(**{**FAST, "max_steps": 2}, method="dr_grpo"))
    assert runner.execute(run.id, settings, sqlite_engine) == "succeeded"
    assert steps_by_key(sqlite_engine, run.id)["reward"] == [1, 2]
    assert get_run(sqlite_engine, run.id).tags["method"] == "dr_grpo"
