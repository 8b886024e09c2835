"""Job ownership: claim a run with one conditional UPDATE, hold it by a lease renewed by heartbeat, record the end.

The database, not the broker, says who runs a job. A message delivered twice, or to two workers, leads to two
`claim` calls; exactly one UPDATE matches the row, the other returns None and its worker does nothing. A worker that
dies stops renewing; once its lease is in the past the run is claimable again (`expired_runs` finds it for the
recovery scan, which re-enqueues it) and the next attempt resumes from the last checkpoint.

Fencing: a claim counts an attempt (`Run.attempts`), and every write a worker makes (metrics, artifacts, events,
progress, its final status) goes through `attempt_scope`, whose first statement locks the run's row only if that
attempt still owns it (running, its number current) and raises `AttemptSuperseded` otherwise. A worker that lost its
lease while still alive (a long pause, a partition) therefore cannot write over the attempt that took the run over:
the row lock orders its transaction before the takeover's claim, or the fence refuses it after.

Times are the workers' UTC clocks (NTP-synchronised hosts; leases are tens of seconds, skew is milliseconds), so the
same code serves PostgreSQL and SQLite. Every state change writes an Event.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, true, update
from sqlalchemy.orm import Session, aliased

from store.db import session_scope
from store.events import add_event
from store.models import Run, RunStatus, utcnow


@dataclass(frozen=True)
class Attempt:
    """One claim of a run: the run and the attempt number its claim counted (`Run.attempts` right after it)."""

    run_id: uuid.UUID
    number: int


class AttemptSuperseded(Exception):
    """A write by an attempt that no longer owns its run (another attempt claimed it, or the run ended). Nothing of
    the refused transaction is written; the worker that gets this stops working on the run."""

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(
            f"attempt {attempt.number} of run {attempt.run_id} no longer owns the run: another attempt took it over "
            "or it has ended; this attempt stops"
        )
        self.attempt = attempt


def fence(session: Session, attempt: Attempt) -> None:
    """Lock run `attempt.run_id` for this transaction if `attempt` still owns it, else raise AttemptSuperseded.

    A no-op UPDATE rather than a read: it takes the row lock (PostgreSQL) or the write lock (SQLite) until commit, so
    a concurrent claim waits for this transaction and any write after that claim is refused.
    """
    result = session.execute(
        update(Run)
        .where(Run.id == attempt.run_id, Run.attempts == attempt.number, Run.status == RunStatus.running)
        .values(attempts=Run.attempts)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise AttemptSuperseded(attempt)


@contextmanager
def attempt_scope(engine: Engine, attempt: Attempt) -> Iterator[Session]:
    """A transaction (as `session_scope`) that writes only while `attempt` owns its run (see `fence`)."""
    with session_scope(engine) as session:
        fence(session, attempt)
        yield session


def parent_ready() -> ColumnElement[bool]:
    """A run may start once the run it starts from (a pipeline's previous stage) has succeeded, or if it has none."""
    parent = aliased(Run)
    return or_(
        Run.parent_id.is_(None),
        select(parent.id).where(parent.id == Run.parent_id, parent.status == RunStatus.succeeded).exists(),
    )


def waiting_children(session: Session, run_id: uuid.UUID) -> list[Run]:
    """The queued runs that start from `run_id`: a pipeline's next stage, to enqueue once `run_id` has succeeded."""
    return list(session.scalars(select(Run).where(Run.parent_id == run_id, Run.status == RunStatus.queued)))


def cancel_descendants(session: Session, run_id: uuid.UUID, reason: str) -> list[uuid.UUID]:
    """Cancel every queued run downstream of `run_id` (its pipeline's later stages): they can never start."""
    now = utcnow()
    cancelled: list[uuid.UUID] = []
    frontier = [run_id]
    while frontier:
        frontier = list(
            session.scalars(select(Run.id).where(Run.parent_id.in_(frontier), Run.status == RunStatus.queued))
        )
        if frontier:
            session.execute(
                update(Run)
                .where(Run.id.in_(frontier), Run.status == RunStatus.queued)
                .values(status=RunStatus.cancelled, finished_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            for child in frontier:
                add_event(session, child, reason, level="warning")
            cancelled += frontier
    return cancelled


def claim(
    session: Session, run_id: uuid.UUID, worker: str, lease_seconds: float, max_attempts: int | None = None
) -> Run | None:
    """Take run `run_id` for `worker` if it is queued, or running under an expired lease, not being cancelled, and
    (with `max_attempts`) claimed fewer times than that: a run that keeps killing its worker is ended by
    `fail_exhausted` instead.

    One UPDATE … WHERE …: the row lock (PostgreSQL) or the database write lock (SQLite) serialises concurrent claims
    and the loser's WHERE no longer matches, so at most one caller gets the run. Returns the claimed run or None.
    No read precedes the UPDATE: on SQLite a read-then-write transaction could fail instead of waiting its turn.
    """
    now = utcnow()
    claimable = and_(
        Run.id == run_id,
        or_(
            Run.status == RunStatus.queued,
            and_(Run.status == RunStatus.running, Run.lease_expires_at < now),
        ),
        Run.cancel_requested.is_(False),
        parent_ready(),
    )
    if max_attempts is not None:
        claimable = and_(claimable, Run.attempts < max_attempts)
    result = session.execute(
        update(Run)
        .where(claimable)
        .values(
            status=RunStatus.running,
            worker=worker,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=Run.attempts + 1,
            started_at=func.coalesce(Run.started_at, now),
            finished_at=None,
            error=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    run = session.get(Run, run_id, populate_existing=True)
    assert run is not None
    add_event(session, run_id, f"claimed by {worker} (attempt {run.attempts})", worker=worker, attempt=run.attempts)
    return run


def renew(session: Session, run_id: uuid.UUID, worker: str, lease_seconds: float, attempt: int | None = None) -> bool:
    """Extend the lease if the run is still ours (`worker`'s and, given, attempt `attempt`'s) and running; False
    means we lost it (stop working on it)."""
    now = utcnow()
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.worker == worker, Run.status == RunStatus.running, _attempt_is(attempt))
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def set_progress(session: Session, run_id: uuid.UUID, progress: float, eta_seconds: float | None) -> bool:
    """Record how far a running run is (0..1) and the seconds it still needs (None = unknown)."""
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.running)
        .values(progress=min(max(progress, 0.0), 1.0), eta_seconds=eta_seconds, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def finish(
    session: Session,
    run_id: uuid.UUID,
    worker: str,
    status: RunStatus | str,
    error: str | None = None,
    attempt: int | None = None,
) -> bool:
    """End a run we hold (as `worker` and, given, attempt `attempt`) with `status` (succeeded / failed / cancelled).
    False if it is no longer ours."""
    status = RunStatus(status)
    if not status.finished:
        raise ValueError(f"finish() needs a final status, got {status}")
    now = utcnow()
    values: dict[str, Any] = dict(status=status, finished_at=now, lease_expires_at=None, error=error, updated_at=now)
    if status == RunStatus.succeeded:
        values.update(progress=1.0, eta_seconds=0.0)
    else:
        values.update(eta_seconds=None)
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.worker == worker, Run.status == RunStatus.running, _attempt_is(attempt))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    if status != RunStatus.succeeded:
        cancel_descendants(session, run_id, f"cancelled: the run it starts from ({run_id}) ended {status.value}")
    level = "error" if status == RunStatus.failed else "info"
    add_event(session, run_id, f"{status.value}" + (f": {error}" if error else ""), level=level, worker=worker)
    return True


def _attempt_is(attempt: int | None) -> ColumnElement[bool]:
    return Run.attempts == attempt if attempt is not None else true()


def cancel_abandoned(session: Session, run_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """End `cancelled` the runs (all, or just `run_id`) whose cancellation was requested but that no live worker
    holds: queued, or running under an expired lease (the worker died before it could stop them). Nothing else would
    ever finish them, since `claim` refuses a run being cancelled."""
    now = utcnow()
    query = (
        update(Run)
        .where(
            Run.cancel_requested.is_(True),
            or_(Run.status == RunStatus.queued, and_(Run.status == RunStatus.running, Run.lease_expires_at < now)),
        )
        .values(status=RunStatus.cancelled, finished_at=now, lease_expires_at=None, eta_seconds=None, updated_at=now)
        .returning(Run.id)
        .execution_options(synchronize_session=False)
    )
    if run_id is not None:
        query = query.where(Run.id == run_id)
    ids = list(session.scalars(query))
    for cancelled in ids:
        add_event(session, cancelled, "cancelled (no worker was running it)")
        cancel_descendants(session, cancelled, f"cancelled: the run it starts from ({cancelled}) was cancelled")
    return ids


def fail_exhausted(session: Session, max_attempts: int, run_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """End `failed` the runs (all, or just `run_id`) that no live worker holds and that have been claimed
    `max_attempts` times already: each attempt's worker died (a job that kills its worker, e.g. out of memory, would
    otherwise be retried forever). Their later pipeline stages are cancelled."""
    now = utcnow()
    reason = f"its worker died on each of {max_attempts} attempts (the limit, FRPO_MAX_ATTEMPTS)"
    query = (
        update(Run)
        .where(
            Run.attempts >= max_attempts,
            or_(Run.status == RunStatus.queued, and_(Run.status == RunStatus.running, Run.lease_expires_at < now)),
        )
        .values(
            status=RunStatus.failed,
            error=reason,
            finished_at=now,
            lease_expires_at=None,
            eta_seconds=None,
            updated_at=now,
        )
        .returning(Run.id)
        .execution_options(synchronize_session=False)
    )
    if run_id is not None:
        query = query.where(Run.id == run_id)
    ids = list(session.scalars(query))
    for failed in ids:
        add_event(session, failed, f"failed: {reason}", level="error")
        cancel_descendants(session, failed, f"cancelled: the run it starts from ({failed}) ended failed")
    return ids


def is_cancel_requested(session: Session, run_id: uuid.UUID) -> bool:
    return bool(session.scalar(select(Run.cancel_requested).where(Run.id == run_id)))


def expired_runs(
    session: Session,
    queued_after_seconds: float = 3600.0,
    idle_after_seconds: float = 30.0,
    live_queues: Collection[str] = (),
) -> list[Run]:
    """Runs whose message may be lost: running under an expired lease (the worker died), or queued and startable
    with no worker and not re-enqueued lately, either for `queued_after_seconds` or, on a queue in `live_queues`
    (the scanning worker's own, so it has a consumer) on which nothing has run for `idle_after_seconds`: an idle
    worker would have taken a message that still existed. A running run's message is gone for good once its
    worker died (acks late redelivers it only after the broker's visibility timeout, days). The idle rule recovers
    a lost message within seconds without flooding a long queue: such a queue always has a run in progress or one
    that just ended. (Nothing running at the moment of the scan is not enough: between two jobs a busy queue has
    nothing running for a second; a scan there re-sent every waiting run, and the workers then spent a second on
    each stale message, 2 minutes of a 10-minute demo.)"""
    now = utcnow()
    stale = now - timedelta(seconds=queued_after_seconds)
    idle = now - timedelta(seconds=idle_after_seconds)
    query = select(Run).where(
        Run.cancel_requested.is_(False),
        or_(
            and_(Run.status == RunStatus.running, Run.lease_expires_at < now),
            and_(
                Run.status == RunStatus.queued,
                Run.worker.is_(None),
                parent_ready(),  # a later pipeline stage waits for its parent, not for a lost message
                or_(
                    and_(Run.created_at < stale, _not_resent_since(stale)),
                    and_(
                        Run.queue.in_(list(live_queues)),
                        Run.created_at < idle,
                        _not_resent_since(idle),
                        _parent_done_before(idle),
                        _queue_idle_since(idle),
                    ),
                ),
            ),
        ),
    )
    return list(session.scalars(query.order_by(Run.created_at)))


def _not_resent_since(moment: datetime) -> ColumnElement[bool]:
    # for a queued run, lease_expires_at marks the last re-enqueue: do not flood the queue.
    return or_(Run.lease_expires_at.is_(None), Run.lease_expires_at < moment)


def _parent_done_before(moment: datetime) -> ColumnElement[bool]:
    """A pipeline stage has been startable since its parent finished, not since it was created."""
    parent = aliased(Run)
    return or_(
        Run.parent_id.is_(None),
        select(parent.id).where(parent.id == Run.parent_id, parent.finished_at < moment).exists(),
    )


def _queue_idle_since(moment: datetime) -> ColumnElement[bool]:
    """Nothing runs on the run's queue, and nothing has ended there since `moment`."""
    other = aliased(Run)
    active = or_(other.status == RunStatus.running, other.finished_at >= moment)
    return ~select(other.id).where(other.queue == Run.queue, active).exists()


def requeue(session: Session, run: Run) -> bool:
    """Mark an expired run as waiting again (queued, no worker) before its message is re-sent; False if it changed
    meanwhile (another scanner or a worker got there first). The next claim counts a new attempt."""
    now = utcnow()
    if run.status == RunStatus.running:
        condition = and_(Run.status == RunStatus.running, Run.lease_expires_at < now)
    else:
        condition = and_(Run.status == RunStatus.queued, Run.worker.is_(None))
    result = session.execute(
        update(Run)
        .where(Run.id == run.id, Run.cancel_requested.is_(False), condition)
        .values(status=RunStatus.queued, worker=None, lease_expires_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    if run.status == RunStatus.running:
        add_event(session, run.id, f"lease of {run.worker} expired: re-enqueued", level="warning", worker=run.worker)
    else:
        add_event(session, run.id, "queued with no worker for too long: re-enqueued", level="warning")
    return True
