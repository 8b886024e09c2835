"""The recovery scan, called as a plain function with a fake `send` (no broker needed), and its guard against forks."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import update

from store.db import session_scope
from store.leases import claim
from store.models import Run, RunStatus
from testkit.service import create_run, get_run
from workers import tasks
from workers.tasks import recover


def test_recover_requeues_dead_workers_runs_once(sqlite_engine):
    dead = create_run(sqlite_engine)
    alive = create_run(sqlite_engine)
    cancelled = create_run(sqlite_engine)
    with session_scope(sqlite_engine) as session:
        claim(session, dead, "dead", 0.001)
        claim(session, cancelled, "dead", 0.001)
        claim(session, alive, "alive", 60)
        session.execute(update(Run).where(Run.id == cancelled).values(cancel_requested=True))
    sent: list = []
    assert recover(sqlite_engine, send=lambda run_id, queue: sent.append((run_id, queue))) == [dead]
    assert sent == [(dead, "cpu")]
    assert recover(sqlite_engine, send=lambda run_id, queue: sent.append((run_id, queue))) == []  # not twice
    assert get_run(sqlite_engine, dead).status == RunStatus.queued
    assert get_run(sqlite_engine, alive).status == RunStatus.running
    assert get_run(sqlite_engine, cancelled).status == RunStatus.cancelled


def test_a_failed_send_marks_nothing(sqlite_engine):
    dead = create_run(sqlite_engine)
    with session_scope(sqlite_engine) as session:
        claim(session, dead, "dead", 0.001)

    def broken(run_id, queue):
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        recover(sqlite_engine, send=broken)
    assert get_run(sqlite_engine, dead).status == RunStatus.running  # still expired: the next scan tries again


def test_a_fork_waits_until_the_recovery_scan_has_left_the_database_and_the_child_starts_unlocked():
    """A pool process forked mid-scan inherited SQLite's global mutex locked and hung at its first connect."""
    inside, left = threading.Event(), threading.Event()

    def scan() -> None:
        with tasks._SCAN_LOCK:
            inside.set()
            threading.Event().wait(0.2)  # the scan's queries
            left.set()

    scanner = threading.Thread(target=scan)
    scanner.start()
    inside.wait()
    pid = os.fork()
    if pid == 0:  # the child: the lock must be free, or its own scans and forks would wait forever
        os._exit(1 if tasks._SCAN_LOCK.locked() else 0)
    forked_after_the_scan = left.is_set()
    _, status = os.waitpid(pid, 0)
    scanner.join()
    assert forked_after_the_scan and os.waitstatus_to_exitcode(status) == 0
