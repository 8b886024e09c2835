"""`frpo sweeps submit | list | status | cancel` and `frpo presets`: sweeps on a running API, through `frpo_client`."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer

from cli.connection import DEFAULT_URL, ApiKeyOption, ApiUrl, JsonFlag, connect, print_json
from cli.jobs import follow_progress, job_line
from cli.specs import PresetOption, SetOption, SpecFile, build_spec
from frpo_client import FINISHED

app = typer.Typer(no_args_is_help=True, help="Sweeps: a base spec and a grid, one job or pipeline per point.")


@app.command("submit")
def submit(
    spec: SpecFile = None,
    preset: PresetOption = None,
    set_: SetOption = None,
    wait: Annotated[bool, typer.Option(help="Show progress until every job of the sweep has ended.")] = False,
    url: ApiUrl = DEFAULT_URL,
    key: ApiKeyOption = "",
) -> None:
    """Submit a sweep spec (a file, a sweep preset, --set overrides); prints the sweep's id."""
    body = build_spec(spec, preset, set_)
    with connect(url, key) as client:
        sweep = client.submit_sweep(body)
        typer.echo(sweep["id"])
        if wait:
            follow_progress(client, [job["id"] for job in client.sweep_jobs(sweep["id"])])


@app.command("list")
def list_sweeps(
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: JsonFlag = False,
    url: ApiUrl = DEFAULT_URL,
    key: ApiKeyOption = "",
) -> None:
    """List sweeps, newest first, with their number of jobs."""
    with connect(url, key) as client:
        found = client.list_sweeps(limit=limit)["items"]
    if as_json:
        print_json(found)
        return
    for sweep in found:
        typer.echo(f"{sweep['id']}  {sweep['created_at'][:16]}  {sweep['job_count']:>4} jobs  {sweep['name']}")


@app.command("status")
def status(sweep_id: str, as_json: JsonFlag = False, url: ApiUrl = DEFAULT_URL, key: ApiKeyOption = "") -> None:
    """A sweep's jobs by status, then each job; exits 1 if any failed."""
    with connect(url, key) as client:
        sweep = client.get_sweep(sweep_id)
        jobs = client.sweep_jobs(sweep_id)
    counts = Counter(job["status"] for job in jobs)
    if as_json:
        print_json({"id": sweep["id"], "name": sweep["name"], "counts": dict(counts), "jobs": jobs})
    else:
        ended = sum(counts[s] for s in FINISHED)
        typer.echo(f"{sweep['name']}: {ended}/{len(jobs)} ended  " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        for job in reversed(jobs):
            typer.echo(job_line(job))
    if counts["failed"]:
        raise typer.Exit(1)


@app.command("cancel")
def cancel(sweep_id: str, url: ApiUrl = DEFAULT_URL, key: ApiKeyOption = "") -> None:
    """Cancel every job of the sweep that has not ended (running ones stop within a heartbeat)."""
    with connect(url, key) as client:
        cancelled = client.cancel_sweep(sweep_id)
    typer.echo(f"cancelled {len(cancelled)} job(s) of sweep {sweep_id}")


def presets(
    kind: Annotated[str | None, typer.Option(help="Only presets for train, finetune, pipeline or sweep specs.")] = None,
    as_json: JsonFlag = False,
    url: ApiUrl = DEFAULT_URL,
    key: ApiKeyOption = "",
) -> None:
    """List the presets a spec may start from: name, kind, what it is for, and the fields it still needs."""
    with connect(url, key) as client:
        found = [p for p in client.presets() if kind is None or p["kind"] == kind]
    if as_json:
        print_json(found)
        return
    for preset in found:
        needs = "; needs " + ", ".join(preset["requires"]) if preset["requires"] else ""
        typer.echo(f"{preset['name']:<28} {preset['kind']:<9} {preset['description']}{needs}")
