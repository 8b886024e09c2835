"""End to end with a real Celery worker process: the embedded default (SQLite + SQLAlchemy broker) and production's
PostgreSQL + Redis; a message delivered twice; a worker killed mid-job and resumed by another; a cancelled job.

Leases are short here (FRPO_LEASE_SECONDS=4, heartbeat 1 s) so recovery happens within seconds.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import pytest
import redis
from sqlalchemy import select

from store.db import make_engine, session_scope
from store.migrate import upgrade
from store.models import Artifact, Event, Run, RunStatus
from store.queries import create_pipeline
from store.specs import PipelineSpec, TrainSpec
from testkit.servers import CeleryWorker as Worker
from testkit.service import FAST, SLOW, create_run, get_run, metric_count, redis_url, steps_by_key, training_processes
from testkit.service import wait_for as _wait_for
from workers.celery_app import TASK_RUN_JOB, make_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REDIS_URL = redis_url(14)


@pytest.fixture
def stack(tmp_path, request):
    """(engine, send, start_worker) for the backend named by the test's parameter."""
    backend = request.param
    if backend == "embedded":
        database_url = f"sqlite:///{tmp_path / 'frpo.db'}"
        broker_url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    else:
        database_url = request.getfixturevalue("postgres_url")
        broker_url = REDIS_URL
        redis.Redis.from_url(REDIS_URL).flushdb()
    upgrade(database_url)
    engine = make_engine(database_url)
    env = {
        **os.environ,
        "FRPO_DATABASE_URL": database_url,
        "FRPO_BROKER_URL": broker_url,
        "FRPO_DATA_DIR": str(tmp_path / "data"),
        "FRPO_LEASE_SECONDS": "4",
        "FRPO_HEARTBEAT_SECONDS": "1",
    }
    app = make_app(broker_url)
    workers: list[Worker] = []

    def send(run_id) -> None:
        app.send_task(TASK_RUN_JOB, args=[str(run_id)], queue="cpu")

    def start_worker() -> Worker:
        worker = Worker(env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    try:
        yield engine, send, start_worker
    finally:
        for worker in workers:
            worker.kill()
        for worker in workers:
            print(f"--- {worker.log_path.name}\n{worker.log()[-3000:]}")
        app.close()
        engine.dispose()
        if backend != "embedded":
            redis.Redis.from_url(REDIS_URL).flushdb()


@contextmanager
def diagnostics(engine, run_id):
    try:
        yield
    except AssertionError:
        with session_scope(engine) as session:
            for event in session.scalars(select(Event).where(Event.run_id == run_id).order_by(Event.id)):
                print(event.time, event.level, event.message, event.data)
        raise


def wait_status(engine, run_id, statuses, timeout: float) -> Run:
    return _wait_for(
        lambda: (run := get_run(engine, run_id)).status in statuses and run,
        timeout,
        what=f"run {run_id} to reach {statuses}",
    )


def wait_checkpoint(engine, run_id, timeout: float = 90) -> int:
    def step():
        with session_scope(engine) as session:
            return session.scalar(
                select(Artifact.step).where(Artifact.run_id == run_id, Artifact.kind == "checkpoint").limit(1)
            )

    return _wait_for(step, timeout, what="a checkpoint artifact")


@pytest.mark.parametrize("stack", ["embedded", "postgres"], indirect=True)
def test_job_succeeds_and_a_duplicate_message_runs_once(stack):
    engine, send, start_worker = stack
    worker = start_worker()
    run_id = create_run(engine, **FAST)
    send(run_id)
    send(run_id)  # the same message delivered twice
    with diagnostics(engine, run_id):
        run = wait_status(engine, run_id, {RunStatus.succeeded, RunStatus.failed}, 120)
        assert run.status == RunStatus.succeeded, run.error
        _wait_for(lambda: f"run {run_id} not claimed" in worker.log(), 60, what="the duplicate message")
        run = get_run(engine, run_id)
        assert run.attempts == 1
        steps = steps_by_key(engine, run_id)
        for key in ("reward", "robust_reward", "loss"):
            assert steps[key] == list(range(1, 7))
        assert metric_count(engine, run_id) == sum(len(s) for s in steps.values())


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_killed_worker_job_resumes_from_checkpoint(stack):
    engine, send, start_worker = stack
    first = start_worker()
    run_id = create_run(engine, **SLOW)
    send(run_id)
    with diagnostics(engine, run_id):
        checkpoint_step = wait_checkpoint(engine, run_id)
        assert get_run(engine, run_id).status == RunStatus.running
        first.kill()
        _wait_for(lambda: not training_processes(run_id), 10, what="the orphaned training process to die")

        start_worker()  # its recovery scan re-enqueues the run once the dead worker's lease expires
        run = wait_status(engine, run_id, {RunStatus.succeeded, RunStatus.failed}, 150)
        assert run.status == RunStatus.succeeded, run.error
        assert run.attempts == 2
        with session_scope(engine) as session:
            messages = session.scalars(select(Event.message).where(Event.run_id == run_id)).all()
        resumed = [m for m in messages if m.startswith("resumed from attempt-1/checkpoint-")]
        assert len(resumed) == 1 and int(resumed[0].rsplit("-", 1)[1]) >= checkpoint_step
        assert any("expired: re-enqueued" in m for m in messages)
        steps = steps_by_key(engine, run_id)
        for key in ("reward", "robust_reward", "loss", "grad_norm"):
            assert steps[key] == list(range(1, SLOW["max_steps"] + 1)), key


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
def test_cancel_stops_the_job(stack):
    engine, send, start_worker = stack
    worker = start_worker()
    run_id = create_run(engine, **SLOW)
    send(run_id)
    with diagnostics(engine, run_id):
        wait_checkpoint(engine, run_id)
        with session_scope(engine) as session:
            session.get(Run, run_id).cancel_requested = True
        run = wait_status(engine, run_id, {RunStatus.cancelled, RunStatus.succeeded, RunStatus.failed}, 10)
        assert run.status == RunStatus.cancelled
        assert training_processes(run_id) == []
        assert run.progress < 1.0
    log = worker.log()
    assert "workers.template ready" in log and "spawning its training child" not in log  # forked from the template


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
def test_a_pipeline_runs_its_stages_in_order(stack):
    """Only the first stage is sent; the worker enqueues each next stage when the one before it succeeds."""
    engine, send, start_worker = stack
    start_worker()
    spec = PipelineSpec(
        train=TrainSpec(**FAST),
        finetune={"max_steps": 4, "save_steps": 2, "eval": {"n_harmful": 4, "n_harmless": 4, "every": 2}},
    )
    with session_scope(engine) as session:
        train, finetune, evaluate = (run.id for run in create_pipeline(session, spec))
    send(train)
    with diagnostics(engine, evaluate):
        done = wait_status(engine, evaluate, {RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled}, 240)
        assert done.status == RunStatus.succeeded, done.error
    runs = [get_run(engine, run_id) for run_id in (train, finetune, evaluate)]
    assert all(run.status == RunStatus.succeeded and run.attempts == 1 for run in runs)
    assert runs[0].finished_at <= runs[1].started_at and runs[1].finished_at <= runs[2].started_at
    assert steps_by_key(engine, finetune)["eval/refusal_rate"] == [0, 2, 4]
    assert steps_by_key(engine, evaluate)["eval/refusal_rate"] == [0]
