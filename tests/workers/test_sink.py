"""The metrics sink on its own: logs become points written by a background thread, with progress and ETA."""

from __future__ import annotations

from types import SimpleNamespace

from store.db import session_scope
from store.leases import claim
from testkit.service import create_run, get_run, steps_by_key
from workers.sink import StoreSink


def test_sink_batches_points_and_progress(sqlite_engine, tmp_path):
    run_id = create_run(sqlite_engine, max_steps=10)
    with session_scope(sqlite_engine) as session:
        claim(session, run_id, "w", 60)
    sink = StoreSink(sqlite_engine, run_id, flush_seconds=0.05, batch_points=3)
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
