"""A sweep as tables for a notebook: one row per job (spec, tags, final metrics), and every metric point.

    from frpo_client import Client
    from frpo_client.export import run_points, sweep_points, sweep_runs, write_table

    with Client.from_env() as client:
        write_table(sweep_runs(client, sweep_id), "runs.parquet")      # or .csv
        write_table(sweep_points(client, sweep_id), "points.parquet")  # run_id, key, step, value: full resolution

Rows are plain dicts, so pandas (`pd.DataFrame(rows)`), polars or the csv module read them as they are. Nested
values (the spec, list-valued tags) are kept as JSON text, so one flat table holds any sweep.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from frpo_client.client import Client, Json

RUN_COLUMNS = (
    "id", "kind", "status", "name", "parent_id", "sweep_id", "attempts", "created_at", "started_at", "finished_at",
    "error",
)  # fmt: skip
POINT_COLUMNS = ("run_id", "key", "step", "value")


def sweep_runs(client: Client, sweep_id: str) -> list[Json]:
    """One row per job of the sweep, oldest first: its columns, `tag.<name>` per tag, `spec` (JSON) and
    `final.<metric>` (the last logged value) per metric."""
    return [run_row(job, client.series(job["id"])) for job in reversed(client.sweep_jobs(sweep_id))]


def run_row(job: Json, series: dict[str, list[tuple[int, float | None]]]) -> Json:
    """A job as one flat row (see `sweep_runs`)."""
    row: Json = {column: job.get(column) for column in RUN_COLUMNS}
    row.update({f"tag.{name}": _flat(value) for name, value in sorted((job.get("tags") or {}).items())})
    row["spec"] = json.dumps(job.get("spec") or {}, sort_keys=True)
    row.update({f"final.{key}": points[-1][1] for key, points in sorted(series.items()) if points})
    return row


def sweep_points(client: Client, sweep_id: str) -> Iterator[Json]:
    """Every logged point of every job of the sweep, at full resolution: run_id, key, step, value."""
    for job in reversed(client.sweep_jobs(sweep_id)):
        yield from run_points(job["id"], client.series(job["id"]))


def run_points(run_id: str, series: dict[str, list[tuple[int, float | None]]]) -> Iterator[Json]:
    """One run's series as rows: run_id, key, step, value."""
    for key, points in sorted(series.items()):
        for step, value in points:
            yield {"run_id": run_id, "key": key, "step": step, "value": value}


def _flat(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def write_table(rows: Iterable[Json], path: str | Path, columns: Sequence[str] | None = None) -> int:
    """Write rows to `path` as CSV or Parquet (by its suffix); the number of rows. Columns: `columns`, else every
    key in order of first appearance (rows may differ: a metric one job never logged is left empty)."""
    path = Path(path)
    rows = list(rows)
    names = list(columns or dict.fromkeys(key for row in rows for key in row))
    if path.suffix == ".csv":
        with path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=names, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".parquet":
        _write_parquet(rows, names, path)
    else:
        raise ValueError(f"{path}: write .csv or .parquet (by the file's suffix)")
    return len(rows)


def _write_parquet(rows: list[Json], names: list[str], path: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ValueError("Parquet needs pyarrow: pip install pyarrow (or write .csv)") from error
    pq.write_table(pa.table({name: _column(pa, [row.get(name) for row in rows]) for name in names}), path)


def _column(pa: Any, values: list[Any]) -> Any:
    """One typed column; a column whose values mix types (a tag that is a number in one job and text in another)
    is kept as text rather than refused."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
