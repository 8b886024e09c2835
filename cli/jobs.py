"""`frpo submit | wait | jobs | logs | cancel | retry`: single jobs on a running API, through `frpo_client`."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from cli.connection import DEFAULT_URL, ApiKeyOption, ApiUrl, JsonFlag, connect, print_json
from cli.specs import PresetOption, SetOption, SpecFile, build_spec
from frpo_client import FINISHED, ApiError, Client, Json


def submit(
    spec: SpecFile = None,
    preset: PresetOption = None,
    set_: SetOption = None,
    wait: Annotated[bool, typer.Option(help="Show a progress bar until the job ends.")] = False,
    url: ApiUrl = DEFAULT_URL,
    key: ApiKeyOption = "",
) -> None:
    """Submit a job spec (a file, a preset, --set overrides); prints the job's id."""
    body = build_spec(spec, preset, set_)
    with connect(url, key) as client:
        if "kind" not in body and preset is not None:
            body["kind"] = _kind_of(client, preset)
        job = client.submit_job(body)
        typer.echo(job["id"])
        if wait:
            follow_progress(client, [job["id"]])


def _kind_of(client: Client, preset: str) -> str:
    """The job kind a preset is for, so `frpo submit --preset toy-safety` needs no `kind`."""
    kinds = {p["name"]: p["kind"] for p in client.presets()}
    if preset not in kinds:
        raise ApiError(f"no preset named {preset!r}; `frpo presets` lists them")
    if kinds[preset] == "sweep":
        raise ApiError(f"{preset!r} is a sweep preset: submit it with `frpo sweeps submit --preset {preset}`")
    return kinds[preset]


def wait_for_job(
    job_id: Annotated[list[str], typer.Argument(help="One or more job ids.")],
    url: ApiUrl = DEFAULT_URL,
    key: ApiKeyOption = "",
) -> None:
    """Show the jobs' progress until they end; exits 1 unless all succeeded."""
    with connect(url, key) as client:
        follow_progress(client, job_id)


def follow_progress(client: Client, job_ids: list[str]) -> None:
    """One progress bar over the jobs until all have ended; then each one's outcome; exit 1 unless all succeeded."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%")]
    with Progress(*columns, TimeRemainingColumn(), transient=False) as progress:
        bar = progress.add_task(job_ids[0][:8], total=float(len(job_ids)))

        def show(jobs: list[Json]) -> None:
            ended = sum(job["status"] in FINISHED for job in jobs)
            done = sum(1.0 if job["status"] in FINISHED else job["progress"] for job in jobs)
            label = f"{job_ids[0][:8]} {jobs[0]['status']}" if len(jobs) == 1 else f"{ended}/{len(jobs)} ended"
            progress.update(bar, completed=done, description=label)

        jobs = client.wait(job_ids, poll_s=1.0, on_poll=show)
    for job in jobs:
        typer.echo(f"{job['id']} {job['status']}" + (f": {job['error']}" if job.get("error") else ""))
    if any(job["status"] != "succeeded" for job in jobs):
        raise typer.Exit(1)


def jobs(
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, failed or cancelled.")] = None,
    kind: Annotated[str | None, typer.Option(help="train, finetune, evaluate or pipeline.")] = None,
    sweep: Annotated[str | None, typer.Option(help="Only this sweep's jobs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    as_json: JsonFlag = False,
    url: ApiUrl = DEFAULT_URL,
    key: ApiKeyOption = "",
) -> None:
    """List jobs, newest first."""
    with connect(url, key) as client:
        found = client.all_jobs(status=status, kind=kind, sweep_id=sweep, max_items=limit)
    if as_json:
        print_json(found)
        return
    for job in found:
        typer.echo(job_line(job))


def job_line(job: Json) -> str:
    """`<id>  train    running     42.0%  frpo λ=0.5 seed=0`"""
    tags = job.get("tags") or {}
    return (
        f"{job['id']}  {job['kind']:<8} {job['status']:<10} {100 * job['progress']:5.1f}%  "
        f"{tags.get('method', '')} λ={tags.get('lamb')} seed={tags.get('seed')}"
    )


def logs(
    job_id: str,
    follow: Annotated[bool, typer.Option(help="Keep printing until the job ends.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event (JSON Lines).")] = False,
    url: ApiUrl = DEFAULT_URL,
    key: ApiKeyOption = "",
) -> None:
    """Print a job's events, oldest first."""
    after = 0
    with connect(url, key) as client:
        while True:
            page = client.events(job_id, after_id=after)
            for event in page["items"]:
                typer.echo(json.dumps(event) if as_json else _event_line(event))
            after = page["next_after_id"]
            if page["items"] and len(page["items"]) == 1000:
                continue  # a full page: more are waiting
            if not follow or client.get_job(job_id)["status"] in FINISHED:
                return
            time.sleep(1)


def _event_line(event: dict[str, Any]) -> str:
    return f"{event['time']}  {event['level']:<7} {event['message']}"


def cancel(job_id: str, url: ApiUrl = DEFAULT_URL, key: ApiKeyOption = "") -> None:
    """Cancel a job (a running one stops within a heartbeat; a pipeline's queued later stages go with it)."""
    with connect(url, key) as client:
        job = client.cancel_job(job_id)
    typer.echo(f"{job['id']} {job['status']}{' (cancel requested)' if job.get('cancel_requested') else ''}")


def retry(job_id: str, url: ApiUrl = DEFAULT_URL, key: ApiKeyOption = "") -> None:
    """Run a failed or cancelled job again: a new job with the same spec, parent and tags; prints its id."""
    with connect(url, key) as client:
        typer.echo(client.retry_job(job_id)["id"])
