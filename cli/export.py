"""`frpo export sweep | run | samples`: results as tables for a notebook (CSV or Parquet by the file's suffix), and
a run's judged evaluation answers as JSON Lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.connection import DEFAULT_URL, ApiKeyOption, ApiUrl, connect
from frpo_client.export import POINT_COLUMNS, run_row, sweep_points, sweep_runs, write_table

app = typer.Typer(no_args_is_help=True, help="Export results as CSV or Parquet tables (full resolution).")

Output = Annotated[Path, typer.Option(dir_okay=False, writable=True, help="A .csv or .parquet file to write.")]


@app.command("sweep")
def sweep(
    sweep_id: str,
    runs: Output,
    points: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Also every metric point (.csv or .parquet).")
    ] = None,
    url: ApiUrl = DEFAULT_URL,
    key: ApiKeyOption = "",
) -> None:
    """A sweep's jobs as one table (spec, tags, final metrics), and optionally every metric point of every job."""
    _check_suffix(runs, points)
    with connect(url, key) as client:
        written = write_table(sweep_runs(client, sweep_id), runs)
        typer.echo(f"{runs}: {written} jobs")
        if points is not None:
            typer.echo(f"{points}: {write_table(sweep_points(client, sweep_id), points, POINT_COLUMNS)} points")


@app.command("run")
def run(
    run_id: str,
    points: Output,
    url: ApiUrl = DEFAULT_URL,
    key: ApiKeyOption = "",
) -> None:
    """Every metric point of one run (run_id, key, step, value), and its row (spec, tags, final metrics) on stdout."""
    _check_suffix(points)
    with connect(url, key) as client:
        series = client.series(run_id)
        rows = (
            {"run_id": run_id, "key": k, "step": s, "value": v} for k, pts in sorted(series.items()) for s, v in pts
        )
        typer.echo(f"{points}: {write_table(rows, points, POINT_COLUMNS)} points")
        summary = run_row(client.get_job(run_id), series)
    typer.echo(", ".join(f"{k}={v}" for k, v in summary.items() if k.startswith("final.")))


@app.command("samples")
def samples(
    run_id: str,
    out: Annotated[Path, typer.Option(dir_okay=False, help="A .jsonl file to write (one judged answer per line).")],
    step: Annotated[int | None, typer.Option(help="Only this evaluation step.")] = None,
    prompt_set: Annotated[str | None, typer.Option("--set", help="Only harmful or harmless prompts.")] = None,
    verdict: Annotated[str | None, typer.Option(help="Only refused or answered.")] = None,
    url: ApiUrl = DEFAULT_URL,
    key: ApiKeyOption = "",
) -> None:
    """A run's judged evaluation answers as JSON Lines: prompt (or its hash), answer, judge and version, verdict."""
    if out.suffix != ".jsonl":
        raise typer.BadParameter(f"{out}: name a .jsonl file")
    with connect(url, key) as client, out.open("w") as file:
        written = 0
        for sample in client.all_samples(run_id, step=step, prompt_set=prompt_set, verdict=verdict):
            file.write(json.dumps(sample, ensure_ascii=False) + "\n")
            written += 1
    typer.echo(f"{out}: {written} samples")


def _check_suffix(*paths: Path | None) -> None:
    for path in paths:
        if path is not None and path.suffix not in (".csv", ".parquet"):
            raise typer.BadParameter(f"{path}: name a .csv or .parquet file")
