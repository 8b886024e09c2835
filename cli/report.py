"""`frpo report SWEEP`: what a finished sweep measured, printed as the demo prints it, for any user's sweep.

Safety sweeps (pipelines whose fine-tuning runs logged refusal) get the table per setting and each FRPO setting's
place against GRPO's frontier; sweeps with evaluation runs get each benchmark before and after fine-tuning. Jobs that
did not succeed are left out and counted.
"""

from __future__ import annotations

from typing import Annotated

import typer

from analysis.capability import format_scores, headline, pipeline_scores, summarise_scores
from analysis.pipelines import format_table, summarise
from cli.connection import DEFAULT_URL, ApiKeyOption, ApiUrl, connect
from cli.demo import SETTINGS, SettingName, safety_report
from frpo_client import Client, Json

REFUSAL = "eval/refusal_rate"


def report(
    sweep_id: str,
    reference: Annotated[
        str,
        typer.Option(help="The baseline whose runs trace the frontier: grpo, or another TRL loss type the sweep ran."),
    ] = "grpo",
    url: ApiUrl = DEFAULT_URL,
    key: ApiKeyOption = "",
) -> None:
    """Print a sweep's results: refusal and a baseline's frontier for safety pipelines, benchmarks for evaluations."""
    with connect(url, key) as client:
        sweep = client.get_sweep(sweep_id)
        jobs = client.sweep_jobs(sweep_id)
        done = [job for job in jobs if job["status"] == "succeeded"]
        typer.echo(f"{sweep['name']}: {len(done)} of {len(jobs)} jobs succeeded" + _left_out(jobs, done))
        lines = [*_safety(client, done, reference), *_capability(client, done)]
    if not lines:
        typer.echo("nothing to report yet: no succeeded fine-tuning run logged refusal, and no evaluation run ran")
        raise typer.Exit(1)
    typer.echo("\n".join(lines))


def _left_out(jobs: list[Json], done: list[Json]) -> str:
    return "" if len(done) == len(jobs) else " (the others are left out until they succeed)"


def _safety(client: Client, done: list[Json], reference: str) -> list[str]:
    safety = SETTINGS[SettingName.safety]
    finetunes = [job for job in done if job["kind"] == "finetune" and job.get("parent_id")]
    if not finetunes or not client.series(finetunes[0]["id"], [REFUSAL])[REFUSAL]:
        return []
    results = safety.collect(client, {}, done)
    try:
        return ["", *safety_report(results, reference)]
    except ValueError as error:  # no GRPO point to place FRPO against (no GRPO run, or no KL logged)
        return ["", format_table(summarise(results)), "", f"No frontier verdict: {str(error).rstrip('.')}."]


def _capability(client: Client, done: list[Json]) -> list[str]:
    evaluations = [job for job in done if job["kind"] == "evaluate"]
    if not evaluations:
        return []
    series = {job["id"]: client.series(job["id"]) for job in evaluations}
    scores = pipeline_scores(evaluations, series)
    metrics = list(headline(score.metric for score in scores).values())
    return [
        "",
        "Benchmarks before and after fine-tuning, mean ± sd over seeds (change = after − before):",
        format_scores(summarise_scores(scores, metrics)),
    ]
