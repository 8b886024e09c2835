"""Claiming, renewing and finishing runs on both databases: one conditional UPDATE decides who owns a job."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from store.db import session_scope
from store.leases import (
    Attempt,
    AttemptSuperseded,
    attempt_scope,
    cancel_abandoned,
    claim,
    expired_runs,
    fail_exhausted,
    finish,
    is_cancel_requested,
    renew,
    requeue,
    set_progress,
)
from store.metrics import write_points
from store.models import Event, Run, RunStatus
from store.queries import create_pipeline
from store.specs import PipelineSpec
from testkit.service import create_run, get_run, steps_by_key


def test_claim_renew_finish(engine):
    run_id = create_run(engine)
    with session_scope(engine) as session:
        run = claim(session, run_id, "w1", 30)
        assert run is not None and run.status == RunStatus.running and run.worker == "w1" and run.attempts == 1
    run = get_run(engine, run_id)
    assert run.started_at is not None and run.lease_expires_at is not None
    with session_scope(engine) as session:
        assert claim(session, run_id, "w2", 30) is None  # live lease: someone else's
        assert renew(session, run_id, "w1", 30)
        assert not renew(session, run_id, "w2", 30)
        assert set_progress(session, run_id, 0.5, 12.0)
        assert not is_cancel_requested(session, run_id)
    assert get_run(engine, run_id).progress == 0.5
    with session_scope(engine) as session:
        assert not finish(session, run_id, "w2", RunStatus.succeeded)
        assert finish(session, run_id, "w1", RunStatus.succeeded)
    run = get_run(engine, run_id)
    assert run.status == RunStatus.succeeded and run.progress == 1.0 and run.finished_at is not None
    with session_scope(engine) as session:
        assert claim(session, run_id, "w3", 30) is None  # finished: never again
        assert not renew(session, run_id, "w1", 30)
        messages = session.scalars(select(Event.message).where(Event.run_id == run_id).order_by(Event.id)).all()
    assert messages[0].startswith("claimed by w1") and messages[-1] == "succeeded"


def test_two_concurrent_claims_exactly_one_wins(engine):
    for _ in range(5):
        run_id = create_run(engine)
        barrier = threading.Barrier(2)
        results: dict[str, bool] = {}

        def attempt(worker: str, run_id=run_id, barrier=barrier, results=results) -> None:
            barrier.wait()
            with session_scope(engine) as session:
                results[worker] = claim(session, run_id, worker, 30) is not None

        threads = [threading.Thread(target=attempt, args=(w,)) for w in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results.values()) == [False, True]
        assert get_run(engine, run_id).attempts == 1


def test_expired_lease_is_reclaimed_and_recovered(engine):
    run_id = create_run(engine)
    with session_scope(engine) as session:
        assert claim(session, run_id, "dead", 30)
        assert expired_runs(session) == []
        session.execute(
            update(Run).where(Run.id == run_id).values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with session_scope(engine) as session:
        assert not renew(session, run_id, "other", 30)
        [expired] = expired_runs(session)
        assert expired.id == run_id
        assert requeue(session, expired)
        assert not requeue(session, expired)  # a second scanner changes nothing
    run = get_run(engine, run_id)
    assert run.status == RunStatus.queued and run.worker is None
    with session_scope(engine) as session:
        assert expired_runs(session) == []  # just re-enqueued: not again
        assert claim(session, run_id, "new", 30).attempts == 2
        assert not renew(session, run_id, "dead", 30)  # the old worker learns it lost the run


def test_expired_lease_can_be_claimed_directly(engine):
    run_id = create_run(engine)
    with session_scope(engine) as session:
        claim(session, run_id, "dead", 0.001)
    with session_scope(engine) as session:
        run = claim(session, run_id, "new", 30)
        assert run is not None and run.worker == "new" and run.attempts == 2


def test_cancel_requested_and_old_queued_runs(engine):
    cancelled = create_run(engine, columns={"cancel_requested": True})
    old = create_run(engine, columns={"created_at": datetime.now(UTC) - timedelta(hours=2)})
    create_run(engine)  # recent: its message is presumably still in the queue
    with session_scope(engine) as session:
        assert claim(session, cancelled, "w", 30) is None
        assert is_cancel_requested(session, cancelled)
        assert [run.id for run in expired_runs(session)] == [old]
        with pytest.raises(ValueError):
            finish(session, old, "w", RunStatus.running)


def test_cancel_abandoned(engine):
    dead = create_run(engine)
    alive = create_run(engine)
    with session_scope(engine) as session:
        claim(session, dead, "dead", 0.001)
        claim(session, alive, "alive", 30)
        session.execute(update(Run).where(Run.id.in_([dead, alive])).values(cancel_requested=True))
    with session_scope(engine) as session:
        assert claim(session, dead, "new", 30) is None  # a run being cancelled is never started again
        assert cancel_abandoned(session) == [dead]
        assert cancel_abandoned(session) == []
    assert get_run(engine, dead).status == RunStatus.cancelled
    assert get_run(engine, alive).status == RunStatus.running  # its worker will stop it


def test_a_lost_message_on_an_idle_queue_is_resent_within_seconds(engine):
    """A startable queued run on a queue this worker consumes, with nothing running there, has lost its message."""
    minute_ago = datetime.now(UTC) - timedelta(minutes=1)
    lost = create_run(engine, columns={"created_at": minute_ago})
    create_run(engine, columns={"created_at": minute_ago}, queue="gpu")  # nobody here consumes gpu: left alone
    create_run(engine)  # just queued: its message is presumably on its way
    with session_scope(engine) as session:
        assert expired_runs(session) == []  # no live queue given: only the hour-long rule applies
        assert [run.id for run in expired_runs(session, live_queues=["cpu"])] == [lost]
        [run] = expired_runs(session, live_queues=["cpu"])
        assert requeue(session, run)
    with session_scope(engine) as session:
        assert expired_runs(session, live_queues=["cpu"]) == []  # just re-enqueued: not again for a while

    busy = create_run(engine)
    with session_scope(engine) as session:
        claim(session, busy, "w", 30)  # a run in progress: the queue is busy, a waiting message is just waiting
        session.execute(update(Run).where(Run.id == lost).values(lease_expires_at=minute_ago))
        assert expired_runs(session, live_queues=["cpu"]) == []


def test_a_busy_queue_between_two_jobs_is_not_idle_so_its_waiting_runs_are_not_resent(engine):
    """The moment between one job's end and the next one's start has nothing running; the queue is not idle then."""
    minute_ago = datetime.now(UTC) - timedelta(minutes=1)
    waiting = [create_run(engine, columns={"created_at": minute_ago}) for _ in range(3)]
    just_done = create_run(engine, columns={"created_at": minute_ago})
    with session_scope(engine) as session:
        claim(session, just_done, "w", 30)
        finish(session, just_done, "w", RunStatus.succeeded)
        assert expired_runs(session, live_queues=["cpu"]) == []  # ended a moment ago: the worker is picking up
        session.execute(update(Run).where(Run.id == just_done).values(finished_at=minute_ago))
        assert [run.id for run in expired_runs(session, live_queues=["cpu"])] == waiting  # nothing for 30 s: lost


def test_an_attempt_writes_only_while_it_owns_the_run(engine):
    run_id = create_run(engine)
    with session_scope(engine) as session:
        first = Attempt(run_id, claim(session, run_id, "old", 0.001).attempts)
    with attempt_scope(engine, first) as session:
        write_points(session, run_id, [("loss", 1, 1.0)])
    with session_scope(engine) as session:
        second = Attempt(run_id, claim(session, run_id, "new", 30).attempts)  # the old lease expired: taken over
    with pytest.raises(AttemptSuperseded, match="attempt 1 of run .* no longer owns the run"):
        with attempt_scope(engine, first) as session:
            write_points(session, run_id, [("loss", 1, 99.0), ("loss", 2, 99.0)])
    with attempt_scope(engine, second) as session:
        write_points(session, run_id, [("loss", 2, 2.0)])
    assert steps_by_key(engine, run_id) == {"loss": [1, 2]}
    with session_scope(engine) as session:
        assert not renew(session, run_id, "new", 30, attempt=first.number)  # same worker name, older attempt
        assert not finish(session, run_id, "new", RunStatus.failed, attempt=first.number)
        assert finish(session, run_id, "new", RunStatus.succeeded, attempt=second.number)
    with pytest.raises(AttemptSuperseded):  # a finished run takes no more writes from anyone
        with attempt_scope(engine, second) as session:
            write_points(session, run_id, [("loss", 3, 3.0)])


def test_a_takeover_waits_for_the_fenced_write_in_flight(engine):
    """The fence holds the run's row until commit: a claim made meanwhile lands after the write, never under it."""
    run_id = create_run(engine)
    with session_scope(engine) as session:
        first = Attempt(run_id, claim(session, run_id, "old", 0.001).attempts)
    claimed = threading.Event()

    def take_over() -> None:
        with session_scope(engine) as session:
            claim(session, run_id, "new", 30)
        claimed.set()

    with attempt_scope(engine, first) as session:
        thread = threading.Thread(target=take_over)
        thread.start()
        assert not claimed.wait(1.0)  # blocked on the fence's lock
        write_points(session, run_id, [("loss", 1, 1.0)])
    thread.join(timeout=60)
    assert claimed.is_set() and get_run(engine, run_id).attempts == 2
    assert steps_by_key(engine, run_id) == {"loss": [1]}


def test_a_job_that_kills_its_worker_fails_at_the_attempt_limit(engine):
    run_id = create_run(engine)
    later_stage = create_run(engine, columns={"parent_id": run_id})
    expired = datetime.now(UTC) - timedelta(seconds=1)
    for attempt in (1, 2):
        with session_scope(engine) as session:
            assert claim(session, run_id, f"w{attempt}", 30, max_attempts=2).attempts == attempt
            assert fail_exhausted(session, 2) == []  # a live worker holds it: not abandoned
            session.execute(update(Run).where(Run.id == run_id).values(lease_expires_at=expired))  # it died
    with session_scope(engine) as session:
        assert claim(session, run_id, "w3", 30, max_attempts=2) is None  # the limit: not a third attempt
        assert fail_exhausted(session, 2) == [run_id]
    run = get_run(engine, run_id)
    assert run.status == RunStatus.failed and "died on each of 2 attempts" in run.error
    assert get_run(engine, later_stage).status == RunStatus.cancelled


def test_cancelling_an_abandoned_run_cancels_its_later_stages(engine):
    with session_scope(engine) as session:
        train, finetune, evaluate = create_pipeline(session, PipelineSpec())
    with session_scope(engine) as session:
        claim(session, train.id, "dead", 0.001)
        session.execute(update(Run).where(Run.id == train.id).values(cancel_requested=True))
    with session_scope(engine) as session:
        assert cancel_abandoned(session) == [train.id]
    assert [get_run(engine, run).status for run in (train.id, finetune.id, evaluate.id)] == [RunStatus.cancelled] * 3
