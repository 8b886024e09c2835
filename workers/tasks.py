"""Celery tasks: thin wrappers around plain functions (`runner.execute`, `recover`), which the tests call directly.

    celery -A workers.celery_app worker -Q cpu --pool prefork -c 1

Each worker also runs the recovery scan in a thread of its main process, every heartbeat: runs whose lease expired
(their worker died) are put back in the queue and resumed from their last checkpoint by whichever worker claims them.
Several workers scanning at once is harmless: `requeue` is a conditional update, and a duplicate message is a no-op
because only one claim can succeed.

The scan runs under `_SCAN_LOCK`, which a fork of the worker's process also takes: a pool process forked while the
scan thread was inside SQLite inherited SQLite's global mutex locked, and hung at its first connect (seen once in a
16-seed demo, with one of two workers stuck for 9 minutes).

Each worker also starts its template process (workers.template) before its pool: its CPU jobs' training children are
forked from it with the ML stack already imported, instead of each importing it anew (FRPO_WORKER_TEMPLATE=false
turns it off).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Collection

from celery.signals import worker_init, worker_process_init, worker_ready
from sqlalchemy import Engine

from store.db import make_engine, session_scope
from store.leases import cancel_abandoned, expired_runs, fail_exhausted, requeue
from store.settings import Settings, get_settings
from workers import runner
from workers.celery_app import TASK_RUN_JOB, app, enqueue
from workers.template import SOCKET_ENV, start_template

log = logging.getLogger(__name__)

TASK_RECOVER = "workers.tasks.recover"
QUEUED_RESEND_SECONDS = 3600.0  # a queued run's message is re-sent only after this long (queues can be long)
IDLE_RESEND_SECONDS = 30.0  # ... or after this long while its queue, which this worker consumes, runs nothing


_SCAN_LOCK = threading.Lock()
# A fork waits until no scan is inside the database driver, and the child starts with the lock free.
os.register_at_fork(before=_SCAN_LOCK.acquire, after_in_parent=_SCAN_LOCK.release, after_in_child=_SCAN_LOCK.release)


@app.task(name=TASK_RUN_JOB, bind=True, acks_late=True)
def run_job(self, run_id: str) -> str:
    """Run one job; a message for a job that is claimed or finished does nothing."""
    return runner.execute(uuid.UUID(run_id))


def recover(
    engine: Engine | None = None,
    send: Callable[[uuid.UUID, str], None] = enqueue,
    queued_after_seconds: float = QUEUED_RESEND_SECONDS,
    live_queues: Collection[str] = (),
) -> list[uuid.UUID]:
    """Re-enqueue runs whose worker died (lease expired) or whose message looks lost; returns their ids. Runs being
    cancelled whose worker died are ended `cancelled` instead, and runs whose worker died on `max_attempts`
    attempts are ended `failed`.

    The message is sent inside the transaction that marks the run queued: if sending fails nothing is marked, and if
    the commit fails after sending, the extra message is a harmless no-op.
    """
    settings = get_settings()
    with _SCAN_LOCK:  # from the first connect to the last close: a fork must not copy SQLite's mutex mid-scan
        scan_engine = engine or make_engine(settings.database_url)
        recovered: list[uuid.UUID] = []
        try:
            with session_scope(scan_engine) as session:
                cancel_abandoned(session)
                fail_exhausted(session, settings.max_attempts)
                expired = expired_runs(
                    session,
                    queued_after_seconds=queued_after_seconds,
                    idle_after_seconds=IDLE_RESEND_SECONDS,
                    live_queues=live_queues,
                )
                for run in expired:
                    if requeue(session, run):
                        send(run.id, run.queue)
                        recovered.append(run.id)
        finally:
            if engine is None:
                scan_engine.dispose()
    if recovered:
        log.warning("re-enqueued %d run(s): %s", len(recovered), ", ".join(map(str, recovered)))
    return recovered


@app.task(name=TASK_RECOVER)
def recover_task() -> list[str]:
    return [str(run_id) for run_id in recover()]


_scan_engine: Engine | None = None


def _recovery_loop(settings: Settings, queues: list[str], stop: threading.Event) -> None:
    global _scan_engine
    _scan_engine = make_engine(settings.database_url)
    while not stop.wait(settings.heartbeat_seconds):
        try:
            recover(_scan_engine, live_queues=queues)
        except Exception:  # the database or broker is briefly away: try again next time
            log.exception("recovery scan failed")


_template = None  # the worker's template process, kept so that it is not garbage-collected while it serves


@worker_init.connect
def _start_template(**kwargs) -> None:
    """In the worker's main process, before the pool starts: its pool processes find the template through the
    environment they inherit. A template that cannot start costs speed, never a job: children are spawned."""
    global _template
    if not get_settings().worker_template:
        return
    try:
        _template, path = start_template()
    except Exception:
        log.exception("the worker's template did not start: training children will be spawned")
        return
    os.environ[SOCKET_ENV] = path


@worker_ready.connect
def _start_recovery(sender=None, **kwargs) -> None:
    settings = get_settings()
    queues = [queue.name for queue in getattr(getattr(sender, "task_consumer", None), "queues", [])]
    try:
        recover()
    except Exception:
        log.exception("recovery scan at start failed")
    thread = threading.Thread(
        target=_recovery_loop, args=(settings, queues, threading.Event()), name="recovery", daemon=True
    )
    thread.start()


@worker_process_init.connect
def _forget_parent_connections(**kwargs) -> None:
    """A forked pool child must not use (or close) the main process's database connections."""
    if _scan_engine is not None:
        _scan_engine.dispose(close=False)
