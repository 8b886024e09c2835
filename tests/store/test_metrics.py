"""Metric upserts on both databases (COPY + ON CONFLICT on PostgreSQL): re-writing steps never duplicates them."""

from __future__ import annotations

from sqlalchemy import event, func, select

from store.db import session_scope
from store.metrics import points_from_log, record_artifact, write_points
from store.models import Artifact, Event, MetricPoint


def series(engine, run_id, key):
    with session_scope(engine) as session:
        rows = session.execute(
            select(MetricPoint.step, MetricPoint.value)
            .where(MetricPoint.run_id == run_id, MetricPoint.key == key)
            .order_by(MetricPoint.step)
        )
        return [tuple(row) for row in rows]


def test_write_points_upserts_in_batches(engine, run_id):
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    points = [(key, step, float(step)) for step in range(1, 1201) for key in ("loss", "reward")]
    assert write_points(engine, run_id, points, batch_size=500) == 2400
    # a resumed job re-logs steps 1000.. with new values, in a session this time
    with session_scope(engine) as session:
        write_points(session, run_id, [("loss", step, -1.0) for step in range(1000, 1301)])
    loss = series(engine, run_id, "loss")
    assert [step for step, _ in loss] == list(range(1, 1301))
    assert loss[998] == (999, 999.0) and loss[999] == (1000, -1.0)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(MetricPoint)) == 1300 + 1200
    if engine.dialect.name == "postgresql":
        # 2400 points in 5 batches of ≤ 500, then 301 more: each batch COPYed to the stage, merged by one statement
        merges = [s for s in statements if "ON CONFLICT" in s]
        assert len(merges) == 6 and all("FROM _frpo_metric_stage" in s for s in merges)


def test_last_value_in_a_call_wins_and_empty_is_fine(engine, run_id):
    assert write_points(engine, run_id, []) == 0
    assert write_points(engine, run_id, [("x", 1, 1.0), ("x", 1, 2.0)]) == 1
    assert series(engine, run_id, "x") == [(1, 2.0)]


def test_record_artifact_is_idempotent(engine, run_id):
    with session_scope(engine) as session:
        record_artifact(session, run_id, "checkpoint", "/out/checkpoint-2", 10, "a" * 64, 2)
        record_artifact(session, run_id, "checkpoint", "/out/checkpoint-2", 11, "b" * 64, 2)
    with session_scope(engine) as session:
        [artifact] = session.scalars(select(Artifact)).all()
        assert artifact.size_bytes == 11 and artifact.sha256 == "b" * 64


def test_points_from_log_keeps_finite_numbers():
    logs = {"loss": 0.5, "step": 3, "reward": 1, "flag": True, "nan": float("nan"), "name": "x", "inf": float("inf")}
    assert points_from_log(logs, 7) == [("loss", 7, 0.5), ("reward", 7, 1.0)]


def test_nan_and_infinite_values_are_skipped_with_a_warning_never_an_error(engine, run_id):
    assert write_points(engine, run_id, [("loss", 1, float("nan")), ("loss", 2, 0.5), ("kl", 2, float("inf"))]) == 1
    assert series(engine, run_id, "loss") == [(2, 0.5)] and series(engine, run_id, "kl") == []
    with session_scope(engine) as session:
        [warning] = session.scalars(select(Event).where(Event.run_id == run_id)).all()
    assert warning.level == "warning" and "kl@2, loss@1" in warning.message
    assert write_points(engine, run_id, [("loss", 3, float("-inf"))]) == 0  # only non-finite: still no error
