"""Test helpers: runs created straight in the store, and polling with a deadline (no fixed sleeps)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text

from store import queries
from store.db import session_scope
from store.models import Artifact, MetricPoint, Run, RunKind
from store.settings import Settings
from store.specs import TrainSpec, check_runnable

REDIS_URL = os.environ.get("FRPO_TEST_REDIS_URL", "redis://127.0.0.1:6379")
"""The Redis the Celery tests use (each test module its own database number); scripts/preflight.py checks it."""


def redis_url(db: int) -> str:
    """:data:`REDIS_URL` with database ``db``."""
    return f"{REDIS_URL.rstrip('/')}/{db}"


# a tiny job that checkpoints every 2 steps; the slow one leaves time to kill or cancel it mid-run
FAST = dict(max_steps=6, save_steps=2, per_device_train_batch_size=16, num_generations=8)
SLOW = dict(max_steps=80, save_steps=4, per_device_train_batch_size=16, num_generations=8)


def create_run(engine, columns: dict | None = None, **spec) -> uuid.UUID:
    """A queued train run with `spec` fields over the defaults, and any Run `columns` set directly."""
    with session_scope(engine) as session:
        spec = TrainSpec(**spec)
        run = Run(kind=RunKind.train, spec=spec.model_dump(), queue=spec.queue, **(columns or {}))
        session.add(run)
        session.flush()
        return run.id


def submit(engine, spec, settings: Settings | None = None) -> Run:
    """A run for any job spec, as the API creates it: check what the shape cannot say (with `settings`), check the
    lineage, then create the run (with its tags)."""
    if settings is not None:
        check_runnable(spec, settings)
    with session_scope(engine) as session:
        return queries.create_run(session, spec, parent=queries.check_lineage(session, spec))


def get_run(engine, run_id) -> Run:
    with session_scope(engine) as session:
        return session.get(Run, run_id)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def background(
    command: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen]:
    """`command` in its own session, output to `log_path`, no stdin; afterwards its whole process group is stopped
    (SIGTERM, then SIGKILL), so nothing it started outlives the test."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def responds(url: str, expect: str | None = None) -> bool:
    """Whether GET `url` answers 200 (and, with `expect`, exactly that body) right now."""
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and (expect is None or response.text == expect)


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def cancel_after_first_checkpoint(engine, run_id, timeout: float = 120) -> None:
    """Wait until `run_id` has recorded an artifact (its first checkpoint), then ask for its cancellation: a cancel
    that lands mid-training, not before the trainer started."""

    def has_checkpoint() -> bool:
        with session_scope(engine) as session:
            return session.scalar(select(Artifact.id).where(Artifact.run_id == run_id).limit(1)) is not None

    wait_for(has_checkpoint, timeout, what="a checkpoint")
    with session_scope(engine) as session:
        session.get(Run, run_id).cancel_requested = True


def steps_by_key(engine, run_id) -> dict[str, list[int]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(MetricPoint.key, MetricPoint.step)
            .where(MetricPoint.run_id == run_id)
            .order_by(MetricPoint.key, MetricPoint.step)
        ).all()
    result: dict[str, list[int]] = {}
    for key, step in rows:
        result.setdefault(key, []).append(step)
    return result


def metric_count(engine, run_id) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(MetricPoint).where(MetricPoint.run_id == run_id))


def training_processes(run_id) -> list[int]:
    """Pids of live training children of `run_id` (from /proc: no psutil needed)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        # one argument each when spawned; one string when forked from a template, which retitles it (setproctitle)
        words = b" ".join(cmdline).split()
        if b"--train" in words and str(run_id).encode() in words and state != "Z":
            pids.append(int(entry.name))
    return pids


@contextmanager
def fresh_postgres_database(admin_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped (connections and all) on the way out."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
