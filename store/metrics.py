"""What a run produces: metric points (narrow rows, unique on run/key/step) and artifacts (files with size and hash).

`write_points` is an idempotent upsert: a resumed job re-logs the steps after its checkpoint (and may re-send points
it had logged before dying), and the later value simply overwrites the earlier one, so a series never holds a
duplicate step. On PostgreSQL a batch is streamed with COPY into a temporary staging table and merged with one
`INSERT … SELECT … ON CONFLICT DO UPDATE` (COPY is several times faster than row-by-row inserts); on SQLite it is
one executemany of `INSERT … ON CONFLICT DO UPDATE`. A NaN or infinite value (a diverged loss, an evaluation with
nothing to average) is not a point: it is left out and named in a warning event, never an error that fails the run.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import Artifact, Event, MetricPoint, utcnow

TIME_PREFIX = "time/"
TIME_PHASES = ("start", "imports", "data", "trainer", "train", "evaluation", "save")
"""Where a job's time went, each phase a metric `time/<phase>` in seconds at step 0: written by the training child
(workers.phases), read by `frpo demo` (cli.worker_time), which imports nothing of the workers."""
BATCH_SIZE = 5000
Point = tuple[str, int, float]

_STAGE = "_frpo_metric_stage"
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
    "(run_id uuid, key text, step bigint, value double precision, time timestamptz) ON COMMIT DELETE ROWS"
)
_MERGE = (
    f"INSERT INTO metric_points (run_id, key, step, value, time) SELECT run_id, key, step, value, time FROM {_STAGE} "
    "ON CONFLICT (run_id, key, step) DO UPDATE SET value = EXCLUDED.value, time = EXCLUDED.time"
)


def points_from_log(logs: dict, step: int) -> list[Point]:
    """The numeric, finite entries of a trainer's log dict as points at `step`: strings, bools and the step itself
    are not metrics, and NaN/inf are dropped (SQLite would store NaN as NULL; a chart cannot draw either)."""
    points: list[Point] = []
    for key, value in logs.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or key == "step":
            continue
        if math.isfinite(value):
            points.append((str(key), int(step), float(value)))
    return points


def write_points(
    target: Session | Engine | Connection, run_id: uuid.UUID, points: Iterable[Point], batch_size: int = BATCH_SIZE
) -> int:
    """Upsert `points` (key, step, value) of run `run_id` in batches; returns how many distinct points were written.

    `target` is a Session (written in its transaction), a Connection, or an Engine (one transaction of its own).
    Within one call the last value given for a (key, step) wins. NaN and ±inf values are skipped, with a warning
    event on the run naming their keys and steps (SQLite would turn NaN into NULL and refuse the row).
    """
    latest: dict[tuple[str, int], float] = {}
    for key, step, value in points:
        latest[(str(key), int(step))] = float(value)
    skipped = sorted(point for point, value in latest.items() if not math.isfinite(value))
    for point in skipped:
        del latest[point]
    if not latest and not skipped:
        return 0
    now = utcnow()
    rows = [(run_id, key, step, value, now) for (key, step), value in latest.items()]
    if isinstance(target, Engine):
        with target.begin() as connection:
            _write(connection, run_id, rows, skipped, batch_size)
    elif isinstance(target, Session):
        _write(target.connection(), run_id, rows, skipped, batch_size)
    else:
        _write(target, run_id, rows, skipped, batch_size)
    return len(rows)


def _write(
    connection: Connection, run_id: uuid.UUID, rows: list[tuple], skipped: list[tuple[str, int]], batch_size: int
) -> None:
    if skipped:
        shown = ", ".join(f"{key}@{step}" for key, step in skipped[:20]) + (" …" if len(skipped) > 20 else "")
        connection.execute(
            insert(Event).values(
                run_id=run_id,
                time=utcnow(),
                level="warning",
                message=f"skipped {len(skipped)} metric value(s) that are NaN or infinite: {shown}",
                data={"skipped": [[key, step] for key, step in skipped[:1000]]},
            )
        )
    copy_rows = _copy_postgres if connection.dialect.name == "postgresql" else _upsert_sqlite
    for start in range(0, len(rows), batch_size):
        copy_rows(connection, rows[start : start + batch_size])


def _copy_postgres(connection: Connection, rows: list[tuple]) -> None:
    connection.execute(text(_CREATE_STAGE))
    cursor = connection.connection.driver_connection.cursor()  # psycopg 3, inside the same transaction
    try:
        with cursor.copy(f"COPY {_STAGE} (run_id, key, step, value, time) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()
    connection.execute(text(_MERGE))
    connection.execute(text(f"DELETE FROM {_STAGE}"))  # several batches in one transaction


def _upsert_sqlite(connection: Connection, rows: list[tuple]) -> None:
    table = MetricPoint.__table__
    statement = sqlite_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.run_id, table.c.key, table.c.step],
        set_={"value": statement.excluded.value, "time": statement.excluded.time},
    )
    connection.execute(
        statement, [{"run_id": r[0], "key": r[1], "step": r[2], "value": r[3], "time": r[4]} for r in rows]
    )


def record_artifact(
    session: Session, run_id: uuid.UUID, kind: str, path: str, size_bytes: int, sha256: str, step: int | None
) -> Artifact:
    """Record a file a run produced; recording the same (run, kind, path) again updates it rather than adding one."""
    artifact = session.scalar(
        select(Artifact).where(Artifact.run_id == run_id, Artifact.kind == kind, Artifact.path == path)
    )
    if artifact is None:
        artifact = Artifact(run_id=run_id, kind=kind, path=path, size_bytes=0, sha256="", step=step)
        session.add(artifact)
    artifact.size_bytes, artifact.sha256, artifact.step = size_bytes, sha256, step
    session.flush()
    return artifact
