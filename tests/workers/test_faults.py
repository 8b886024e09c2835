"""Faults injected into real servers and processes mid-run: each job still finishes, every metric step stored once.

PostgreSQL and Redis here are private servers the tests start and restart themselves (testkit.servers), on their own
ports and data folders, so the machine's shared ones stay up. The model is the tiny one, a few steps. Leases are
long enough to survive a loaded machine's slow heartbeats; where a test needs one to run out, it expires it itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select, update

from store.db import make_engine, session_scope
from store.migrate import upgrade
from store.models import Artifact, Event, Run, RunStatus
from store.settings import Settings
from testkit.servers import CeleryWorker, postgres_server, redis_server
from testkit.service import create_run, get_run, metric_count, steps_by_key, training_processes, wait_for
from workers import runner
from workers.celery_app import TASK_RUN_JOB, make_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
JOB = dict(max_steps=8, save_steps=2, per_device_train_batch_size=8, num_generations=4)
KEYS = ("reward", "robust_reward", "loss")


def events(engine, run_id) -> list[str]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Event.message).where(Event.run_id == run_id).order_by(Event.id)))


@contextmanager
def diagnostics(engine, run_id):
    """On a failed assertion, print the run's events (the story of its attempts)."""
    try:
        yield
    except AssertionError:
        print("\n".join(events(engine, run_id)))
        raise


def checkpoints_recorded(engine, run_id) -> list[int]:
    query = select(Artifact.step).where(Artifact.run_id == run_id, Artifact.kind == "checkpoint")
    with session_scope(engine) as session:
        return list(session.scalars(query.order_by(Artifact.step)))


def assert_every_step_once(engine, run_id, max_steps: int = JOB["max_steps"]) -> None:
    steps = steps_by_key(engine, run_id)
    for key in KEYS:
        assert steps[key] == list(range(1, max_steps + 1)), key
    assert metric_count(engine, run_id) == sum(len(series) for series in steps.values())


def expire_lease(engine, run_id) -> None:
    """Let the lease of a worker that is dead or stalled run out now rather than waiting for the clock."""
    with session_scope(engine) as session:
        session.execute(update(Run).where(Run.id == run_id).values(lease_expires_at=Run.started_at))


def execute_in_thread(run_id, settings, engine) -> tuple[threading.Thread, dict]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(status=runner.execute(run_id, settings, engine)))
    thread.start()
    return thread, result


def worker_process(run_id, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`python -m workers.runner <id>`: a worker running one job, in its own process group."""
    with open(log, "ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "workers.runner", str(run_id)],
            cwd=REPO,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_a_postgresql_restart_mid_run_loses_no_metric_step(tmp_path):
    with postgres_server() as server:
        upgrade(server.url)
        engine = make_engine(server.url)
        settings = Settings(data_dir=tmp_path, database_url=server.url, lease_seconds=120, heartbeat_seconds=1)
        run_id = create_run(engine, **JOB)

        def train_log() -> str:
            return (settings.output_root / str(run_id) / "train.log").read_text(errors="replace")

        thread, result = execute_in_thread(run_id, settings, engine)
        with diagnostics(engine, run_id):
            wait_for(lambda: checkpoints_recorded(engine, run_id), 120, what="the first checkpoint")
            server.stop()  # every connection dropped; nothing answers until the training process has met it
            try:
                wait_for(lambda: "could not write" in train_log(), 90, what="the training process to meet the outage")
            finally:
                server.start()
            assert get_run(engine, run_id).status == RunStatus.running  # the outage fell inside the run
            thread.join(timeout=300)
            assert result["status"] == "succeeded"
            run = get_run(engine, run_id)
            assert run.status == RunStatus.succeeded and run.attempts == 1  # ridden out, not retried
            assert_every_step_once(engine, run_id)
            assert checkpoints_recorded(engine, run_id) == list(range(2, JOB["max_steps"] + 1, 2))
        engine.dispose()


def test_a_worker_that_cannot_renew_its_lease_for_a_lease_length_kills_its_training(tmp_path):
    """PostgreSQL stays down past the lease: by then another worker may own the run, so this one stops its child;
    once the database is back, the next attempt resumes and the run ends with every step once."""
    with postgres_server() as server:
        upgrade(server.url)
        engine = make_engine(server.url)
        settings = Settings(data_dir=tmp_path, database_url=server.url, lease_seconds=5, heartbeat_seconds=1)
        run_id = create_run(engine, **JOB)
        thread, result = execute_in_thread(run_id, settings, engine)
        with diagnostics(engine, run_id):
            wait_for(lambda: checkpoints_recorded(engine, run_id), 120, what="the first checkpoint")
            server.stop()
            thread.join(timeout=60)  # the lease (5 s) plus the child's grace period to stop
            assert not thread.is_alive() and result["status"] == "unknown"  # the database is away: it cannot say
            assert training_processes(run_id) == []
            server.start()
            assert runner.execute(run_id, settings, engine) == "succeeded"
            assert get_run(engine, run_id).attempts == 2
            assert_every_step_once(engine, run_id)
        engine.dispose()


def test_a_redis_restart_mid_run_loses_nothing(tmp_path, postgres_url):
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    with redis_server(tmp_path) as broker:
        env = {
            **os.environ,
            "FRPO_DATABASE_URL": postgres_url,
            "FRPO_BROKER_URL": broker.url,
            "FRPO_DATA_DIR": str(tmp_path / "data"),
            "FRPO_LEASE_SECONDS": "10",
            "FRPO_HEARTBEAT_SECONDS": "1",
        }
        worker = CeleryWorker(env, tmp_path / "worker.log")
        app = make_app(broker.url)
        long_job = JOB | {"max_steps": 48}  # long enough that the restart falls mid-run on a quiet machine too
        run_id = create_run(engine, **long_job)
        try:
            app.send_task(TASK_RUN_JOB, args=[str(run_id)], queue="cpu")
            with diagnostics(engine, run_id):
                wait_for(lambda: checkpoints_recorded(engine, run_id), 120, what="the first checkpoint")
                assert get_run(engine, run_id).status == RunStatus.running  # the restart below falls mid-run
                broker.restart(down_seconds=3)  # its memory, the running job's unacknowledged message too, is gone
                run = wait_for(
                    lambda: (run := get_run(engine, run_id)).status.finished and run, 300, what="the job to end"
                )
                assert run.status == RunStatus.succeeded and run.attempts == 1, run.error
                assert_every_step_once(engine, run_id, long_job["max_steps"])
        finally:
            worker.kill()
            print(worker.log()[-3000:])
            app.close()
    engine.dispose()


def test_a_worker_killed_after_a_truncated_checkpoint_resumes_from_the_one_before(tmp_path, sqlite_url):
    """The worker is SIGKILLed mid-run; its newest checkpoint is then cut in half, as a kill during a save or a full
    disk leaves it. The next attempt skips it (an event says why) and resumes from the one before."""
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    env = {
        **os.environ,
        "FRPO_DATABASE_URL": sqlite_url,
        "FRPO_DATA_DIR": str(tmp_path),
        "FRPO_LEASE_SECONDS": "30",
        "FRPO_HEARTBEAT_SECONDS": "1",
    }
    run_id = create_run(engine, **JOB)
    first = worker_process(run_id, env, tmp_path / "first.log")
    with diagnostics(engine, run_id):
        wait_for(lambda: len(checkpoints_recorded(engine, run_id)) >= 2, 180, what="two checkpoints")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        wait_for(lambda: not training_processes(run_id), 10, what="its training process to die with it")
        newest = max(checkpoints_recorded(engine, run_id))
        weights = tmp_path / "runs" / str(run_id) / "attempt-1" / f"checkpoint-{newest}" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])

        expire_lease(engine, run_id)
        settings = Settings(data_dir=tmp_path, database_url=sqlite_url, lease_seconds=30, heartbeat_seconds=1)
        assert runner.execute(run_id, settings, engine) == "succeeded"
        messages = events(engine, run_id)
        assert f"skipped attempt-1/checkpoint-{newest}: model.safetensors" in "\n".join(messages)
        assert f"resumed from attempt-1/checkpoint-{newest - JOB['save_steps']}" in messages
        assert get_run(engine, run_id).attempts == 2
        assert_every_step_once(engine, run_id)
    engine.dispose()


def test_a_worker_whose_run_was_taken_over_has_its_writes_refused_and_stops(tmp_path, sqlite_url):
    """The first worker is paused (SIGSTOP: no heartbeats) while its training child goes on; its lease runs out and a
    second worker takes the run over. The first child's next write is refused and it stops; once the first worker
    resumes it learns it lost the run. The run ends with the second attempt's points, each step once."""
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    env = {
        **os.environ,
        "FRPO_DATABASE_URL": sqlite_url,
        "FRPO_DATA_DIR": str(tmp_path),
        "FRPO_LEASE_SECONDS": "30",
        "FRPO_HEARTBEAT_SECONDS": "1",
    }
    run_id = create_run(engine, **(JOB | {"max_steps": 16}))
    first = worker_process(run_id, env, tmp_path / "first.log")
    with diagnostics(engine, run_id):
        wait_for(lambda: checkpoints_recorded(engine, run_id), 180, what="the first checkpoint")
        [child] = training_processes(run_id)
        os.kill(first.pid, signal.SIGSTOP)  # the worker stalls; its child trains on
        try:
            settings = Settings(data_dir=tmp_path, database_url=sqlite_url, lease_seconds=30, heartbeat_seconds=1)
            expire_lease(engine, run_id)
            thread, result = execute_in_thread(run_id, settings, engine)
            wait_for(lambda: get_run(engine, run_id).attempts == 2, 60, what="the takeover")
            wait_for(lambda: not Path(f"/proc/{child}").exists() or _zombie(child), 60, what="the first child to stop")
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=60) == 0
        thread.join(timeout=300)
        assert result["status"] == "succeeded"
        log = (tmp_path / "runs" / str(run_id) / "train.log").read_text(errors="replace")
        assert "attempt 1 of run" in log and "no longer owns the run" in log  # the child's refused write
        assert any(m.startswith("attempt 1 on ") and "stopped" in m for m in events(engine, run_id))
        run = get_run(engine, run_id)
        assert run.status == RunStatus.succeeded and run.attempts == 2
        steps = steps_by_key(engine, run_id)
        assert steps["reward"] == list(range(1, 17))
    engine.dispose()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
