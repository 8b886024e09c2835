"""Training children forked from a worker's template (workers.template): the same guarantees as spawned ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from store.db import session_scope
from store.models import MetricPoint
from testkit.service import (
    FAST,
    SLOW,
    cancel_after_first_checkpoint,
    create_run,
    get_run,
    steps_by_key,
    training_processes,
    wait_for,
)
from workers import runner, template
from workers.phases import PHASES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template_socket():
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTEST_CURRENT_TEST", raising=False)
        process, path = template.start_template()
    yield path
    process.kill()
    process.wait(timeout=30)


@pytest.fixture
def forked(template_socket, monkeypatch):
    """Jobs run by `runner.execute` in this test are forked from the template. The environment must be the one the
    template started with (else the job is spawned): call `as_the_worker` in the test, after pytest's own variable is
    set for the test's call."""
    monkeypatch.setenv(template.SOCKET_ENV, template_socket)
    return template_socket


def as_the_worker(monkeypatch) -> None:
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)


def template_children(path: str) -> list[int]:
    """Pids of the processes whose parent is the template serving `path`."""
    serving = [pid for pid in _pids() if path.encode() in _cmdline(pid)]
    return [pid for pid in _pids() if _parent(pid) in serving]


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def test_the_ml_stack_preloaded_as_the_template_does_leaves_no_thread_and_no_cuda_to_fork():
    """In a fresh interpreter, as the template starts: this test process would not do, it holds threads that
    earlier tests left (asyncio portals, tqdm monitors)."""
    probe = "from workers import template; template.preload(); print(template.fork_hazard())"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "None"


def test_a_running_thread_makes_forking_unsafe_naming_the_thread():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="a-lingering-thread")
    thread.start()
    try:
        assert "a-lingering-thread" in (template.fork_hazard() or "")
    finally:
        stop.set()
        thread.join()


def test_a_job_whose_environment_differs_beyond_settings_and_celery_logging_is_refused(monkeypatch):
    monkeypatch.setenv("FRPO_LEASE_SECONDS", "5")
    same_but_settings = {**os.environ, "FRPO_DATABASE_URL": "sqlite:///elsewhere.db", "CELERY_LOG_LEVEL": "20"}
    worker = dict(os.environ)
    assert template._differing_environment(same_but_settings, worker) == []
    kernels = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    assert template._differing_environment(kernels, worker) == ["ATEN_CPU_CAPABILITY"]


@pytest.mark.slow
def test_a_forked_job_trains_records_its_phases_and_imports_nothing(forked, sqlite_engine, settings, monkeypatch):
    as_the_worker(monkeypatch)
    run_id = create_run(sqlite_engine, **FAST)
    assert runner.execute(run_id, settings, sqlite_engine) == "succeeded"

    steps = steps_by_key(sqlite_engine, run_id)
    assert steps["reward"] == [1, 2, 3, 4, 5, 6]
    assert {f"time/{phase}" for phase in PHASES} - {"time/evaluation"} <= set(steps)
    seconds = _phase_seconds(sqlite_engine, run_id)
    assert seconds["time/imports"] < 1.0 and seconds["time/start"] < 5.0, seconds  # spawned: ~10-20 s
    log = (settings.output_root / str(run_id) / "train.log").read_text()
    assert "Traceback" not in log


@pytest.mark.slow
def test_a_cancelled_forked_job_is_killed_as_a_group_and_the_template_serves_on(
    forked, sqlite_engine, settings, monkeypatch
):
    as_the_worker(monkeypatch)
    run_id = create_run(sqlite_engine, **SLOW)

    def request_cancel() -> None:
        wait_for(lambda: training_processes(run_id), 60, what="the forked training child")
        (child,) = training_processes(run_id)
        assert os.getsid(child) == child  # its own session, hence its own process group
        assert child in template_children(forked)

        cancel_after_first_checkpoint(sqlite_engine, run_id)

    thread = threading.Thread(target=request_cancel)
    thread.start()
    assert runner.execute(run_id, settings, sqlite_engine) == "cancelled"
    thread.join()
    assert training_processes(run_id) == []
    assert template_children(forked) == []

    again = create_run(sqlite_engine, **FAST)
    assert runner.execute(again, settings, sqlite_engine) == "succeeded"


@pytest.mark.slow
def test_a_forked_child_dies_with_the_runner_that_asked_for_it(forked, sqlite_engine, settings, tmp_path, monkeypatch):
    """The runner here is a process of its own (`python -m workers.runner <id>` with the template's socket), killed
    with SIGKILL mid-training: no `finally` runs in it, yet its child goes."""
    as_the_worker(monkeypatch)
    run_id = create_run(sqlite_engine, **SLOW)
    env = {**os.environ, "FRPO_DATABASE_URL": str(sqlite_engine.url), "FRPO_DATA_DIR": str(settings.data_dir)}
    with open(tmp_path / "runner.log", "ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "workers.runner", str(run_id)], env=env, stdout=log, stderr=log
        )
    try:
        wait_for(lambda: training_processes(run_id), 120, what="the forked training child")
        assert training_processes(run_id)[0] in template_children(forked)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        wait_for(lambda: training_processes(run_id) == [], 10, what="the orphaned child to exit")
    finally:
        worker.kill()
    assert get_run(sqlite_engine, run_id).status.value == "running"  # until its lease expires and recovery resumes it


def _phase_seconds(engine, run_id) -> dict[str, float]:
    query = select(MetricPoint.key, MetricPoint.value).where(
        MetricPoint.run_id == run_id, MetricPoint.key.like("time/%")
    )
    with session_scope(engine) as session:
        rows = session.execute(query)
        return dict(rows.all())
