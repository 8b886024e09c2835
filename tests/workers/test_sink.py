"""The metrics sink on its own: logs become points written by a background thread, with progress and ETA."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from store.db import make_engine, session_scope
from store.leases import Attempt, AttemptSuperseded, claim
from store.migrate import upgrade
from testkit.servers import postgres_server
from testkit.service import create_run, get_run, steps_by_key, wait_for
from workers.sink import StoreSink


def test_sink_batches_points_and_progress(sqlite_engine, tmp_path):
    run_id = create_run(sqlite_engine, max_steps=10)
    with session_scope(sqlite_engine) as session:
        attempt = Attempt(run_id, claim(session, run_id, "w", 60).attempts)
    sink = StoreSink(sqlite_engine, attempt, flush_seconds=0.05, batch_points=3)
    args = SimpleNamespace(output_dir=str(tmp_path))
    state = SimpleNamespace(global_step=0, max_steps=10)
    sink.on_train_begin(args, state, None)
    for step in range(1, 9):
        state.global_step = step
        sink.on_log(args, state, None, logs={"loss": step / 10, "reward": 0.5, "step": step, "note": "x"})
    sink.on_log(args, state, None, logs={"reward": 0.7})  # the same step logged again: last value wins
    sink.on_save(args, state, None)  # no checkpoint folder here: just a flush
    assert steps_by_key(sqlite_engine, run_id) == {"loss": list(range(1, 9)), "reward": list(range(1, 9))}
    sink.on_train_end(args, state, None)
    run = get_run(sqlite_engine, run_id)
    assert run.progress == 0.8 and run.eta_seconds is not None and run.eta_seconds >= 0
    assert not sink._thread.is_alive()


def test_a_superseded_attempt_has_its_points_refused_and_its_training_stopped(sqlite_engine, tmp_path):
    run_id = create_run(sqlite_engine, max_steps=10)
    with session_scope(sqlite_engine) as session:
        first = Attempt(run_id, claim(session, run_id, "old", 0.001).attempts)
    sink = StoreSink(sqlite_engine, first, flush_seconds=0.05)
    args, state = SimpleNamespace(output_dir=str(tmp_path)), SimpleNamespace(global_step=1, max_steps=10)
    sink.on_train_begin(args, state, None)
    sink.on_log(args, state, None, logs={"loss": 1.0})
    sink.flush()
    with session_scope(sqlite_engine) as session:
        assert claim(session, run_id, "new", 60).attempts == 2  # the lease ran out: another worker took the run
    state.global_step = 2
    sink.on_log(args, state, None, logs={"loss": 2.0})
    sink.flush()
    assert sink.superseded and not sink._thread.is_alive()
    with pytest.raises(AttemptSuperseded, match="attempt 1 .* no longer owns the run"):
        sink.on_step_end(args, state, None)
    assert steps_by_key(sqlite_engine, run_id) == {"loss": [1]}
    assert get_run(sqlite_engine, run_id).progress == 0.1  # the first attempt's progress, never after the takeover


@pytest.mark.integration
def test_points_logged_during_an_outage_are_spilled_to_disk_and_written_when_the_database_returns(tmp_path):
    with postgres_server() as server:
        upgrade(server.url)
        engine = make_engine(server.url)
        run_id = create_run(engine, max_steps=100)
        with session_scope(engine) as session:
            attempt = Attempt(run_id, claim(session, run_id, "w", 600).attempts)
        sink = StoreSink(engine, attempt, flush_seconds=0.05, batch_points=2, outage_seconds=30)
        args, state = SimpleNamespace(output_dir=str(tmp_path)), SimpleNamespace(global_step=0, max_steps=100)
        sink.on_train_begin(args, state, None)
        server.stop()
        for step in range(1, 31):
            state.global_step = step
            sink.on_log(args, state, None, logs={"loss": step / 10})
        wait_for(lambda: sink.spill.is_file() and len(sink.spill.read_text().splitlines()) >= 20, 30, what="a spill")
        server.start()
        sink.on_train_end(args, state, None)
        assert steps_by_key(engine, run_id) == {"loss": list(range(1, 31))}
        assert not sink.spill.exists() and not sink._thread.is_alive()
        engine.dispose()
