"""`frpo`: start the service, manage the database and keys, and talk to a running API. Wiring only.

\b
frpo demo [--setting math]       a toy experiment end to end through the embedded service
frpo serve                       embedded default: SQLite, its broker, one CPU worker and the API
frpo dashboard                   the Streamlit dashboard for that API (a read key, created once)
frpo api | worker --queue gpu | db upgrade | keys create --scope submit
frpo submit spec.yaml | jobs | logs ID | wait ID | cancel ID | retry ID
frpo sweeps submit --preset NAME --set FIELD=VALUE | sweeps status ID | sweeps cancel ID
frpo presets | export sweep ID --runs runs.csv | report SWEEP_ID
(commands that talk to an API read FRPO_API_URL and FRPO_API_KEY; --json on listings)
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli import export, jobs, sweeps
from cli import report as sweep_report
from cli.connection import DEFAULT_URL, ApiUrl
from cli.demo import SETTINGS, SettingName, embedded_service, per_setting, report, run_demo
from frpo_client import ApiError, Client, version

app = typer.Typer(no_args_is_help=True, help=__doc__, rich_markup_mode=None)
db_app = typer.Typer(no_args_is_help=True, help="The database schema.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys.")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(sweeps.app, name="sweeps")
app.add_typer(export.app, name="export")
app.command()(jobs.submit)
app.command("wait")(jobs.wait_for_job)
app.command()(jobs.jobs)
app.command()(jobs.logs)
app.command()(jobs.cancel)
app.command()(jobs.retry)
app.command()(sweeps.presets)
app.command()(sweep_report.report)


def _print_version(given: bool) -> None:
    if given:
        typer.echo(f"frpo-lab {version()}")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Options for every command."""


class Scope(StrEnum):
    read = "read"
    submit = "submit"
    admin = "admin"


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the configured database (FRPO_DATABASE_URL, default the embedded SQLite file)."""
    from store.migrate import upgrade
    from store.settings import get_settings

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}: {_redact(settings.database_url)}")


@keys_app.command("create")
def keys_create(
    scope: Annotated[Scope, typer.Option(help="read < submit < admin")] = Scope.submit,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
) -> None:
    """Create an API key and print it (it is stored only as a hash: copy it now)."""
    from store.db import session_scope
    from store.queries import create_api_key

    with session_scope() as session:
        typer.echo(create_api_key(session, name=name, scope=scope.value))


@keys_app.command("list")
def keys_list() -> None:
    """List keys: id (a job's owner_key_id), prefix, scopes, revoked, last used, name (secrets are never stored)."""
    from store.db import session_scope
    from store.queries import list_api_keys

    with session_scope() as session:
        for key in list_api_keys(session):
            revoked = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "live"
            used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
            typer.echo(f"{key.id:>4}  {key.prefix}  {','.join(key.scopes):<6} {revoked:<18} used {used:<16} {key.name}")


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (frpo_<prefix>_…), see `keys list`.")],
) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    from store.db import session_scope
    from store.queries import revoke_api_key

    with session_scope() as session:
        if not revoke_api_key(session, prefix):
            typer.echo(f"no live key with prefix {prefix!r}", err=True)
            raise typer.Exit(1)
    typer.echo(f"revoked {prefix}")


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the REST API."""
    import uvicorn

    uvicorn.run("api.main:create_app", factory=True, host=host, port=port)


@app.command()
def worker(
    queue: Annotated[list[str], typer.Option(help="Queues to consume (cpu, gpu).")] = ["cpu"],  # noqa: B006
) -> None:
    """Run a Celery worker: one job per child process, replaced after each job."""
    os.execvp(sys.executable, _worker_command(queue))


def _worker_command(queues: list[str], name: str = "worker") -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "worker",
        "-Q",
        ",".join(queues),
        "--pool",
        "prefork",
        "--concurrency",
        "1",
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        "INFO",
    ]


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """The embedded default in one command: migrate, start a CPU worker, serve the API, print where to look."""
    from store.settings import get_settings

    settings = get_settings()
    db_upgrade()
    key = _embedded_admin_key(settings.data_dir)
    from cli.processes import start_worker, stop_workers

    worker_process = start_worker(_worker_command(["cpu"]))
    typer.echo(f"API: http://{host}:{port}/api/v1  (docs: http://{host}:{port}/api/v1/docs)")
    typer.echo(f"admin key: {key}  (also in {settings.data_dir / 'admin.key'})")
    try:
        api(host=host, port=port)
    finally:
        stop_workers([worker_process])


@app.command()
def demo(
    setting: Annotated[
        SettingName,
        typer.Option(help="safety: refusal before and after benign SFT; math: benchmarks before and after code SFT."),
    ] = SettingName.safety,
    seeds: Annotated[
        int | None, typer.Option(help=f"Seeds of each method, λ and budget {per_setting('seeds')}.")
    ] = None,
    lamb: Annotated[
        list[float] | None, typer.Option(help=f"FRPO's λ values, GRPO beside them {per_setting('lambdas')}.")
    ] = None,
    rl_steps: Annotated[int | None, typer.Option(help=f"RL steps of each FRPO run {per_setting('rl_steps')}.")] = None,
    grpo_steps: Annotated[
        list[int] | None,
        typer.Option(
            help=f"GRPO's step budgets, its frontier (safety: steps of one run per β) {per_setting('grpo_steps')}."
        ),
    ] = None,
    finetune_steps: Annotated[
        int | None, typer.Option(help=f"Downstream SFT steps per run {per_setting('finetune_steps')}.")
    ] = None,
    warm_start_steps: Annotated[
        int | None, typer.Option(help=f"SFT steps of the warm start {per_setting('warm_start_steps')}.")
    ] = None,
    train_warm_start: Annotated[
        bool | None,
        typer.Option(
            "--train-warm-start/--shipped-warm-start",
            help="Train the warm start as a job first, or start from the shipped one (default: safety shipped; math "
            "trains, it ships none).",
        ),
    ] = None,
    first_seed: Annotated[
        int, typer.Option(help="The first seed: seeds run first-seed … first-seed + seeds − 1.", min=0)
    ] = 0,
    results: Annotated[
        Path | None, typer.Option(help="Also write what the demo measured, as JSON, to this file (for scripts).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (one CPU thread each).")] = 2,
    port: Annotated[int, typer.Option(help="Port of the demo's API on 127.0.0.1.")] = 8000,
) -> None:
    """One of the paper's experiments at toy scale on a CPU: warm start → RL with GRPO (several step budgets) and
    FRPO (each λ) → downstream SFT, through the embedded service. safety: refusal of harmful prompts before and after
    benign SFT, and FRPO against GRPO's frontier; math: toy_arith and toy_humaneval before and after code SFT."""
    from store.settings import get_settings

    chosen = SETTINGS[setting]
    scale = chosen.scale.given(
        seeds=seeds,
        lambdas=lamb,
        rl_steps=rl_steps,
        grpo_steps=grpo_steps,
        finetune_steps=finetune_steps,
        warm_start_steps=warm_start_steps,
        first_seed=first_seed,
    )
    train_warm_start = not chosen.shipped if train_warm_start is None else train_warm_start
    if not (train_warm_start or chosen.shipped):
        raise typer.BadParameter(f"the {setting} setting ships no warm start: leave out --shipped-warm-start")
    settings = get_settings()
    db_upgrade()
    key = _embedded_admin_key(settings.data_dir)
    started = time.monotonic()
    logs = settings.data_dir / "logs"
    with embedded_service(workers, _worker_command, port, logs) as url, Client(url, key) as client:
        typer.echo(f"API: {url}/api/v1  (admin key in {settings.data_dir / 'admin.key'}; worker logs in {logs})")
        try:
            sweep_id, measured, worker_time = run_demo(client, chosen, scale, train_warm_start)
        except (RuntimeError, ApiError) as error:
            typer.echo(f"demo failed: {error}", err=True)
            raise typer.Exit(1) from error
    typer.echo(report(chosen, sweep_id, measured, time.monotonic() - started, worker_time))
    if results is not None:
        summary = {"setting": setting.value, "sweep_id": sweep_id, "scale": asdict(scale), **chosen.summary(measured)}
        results.write_text(json.dumps(summary, indent=1) + "\n")


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port of the dashboard on 127.0.0.1.")] = 8501,
    url: ApiUrl = DEFAULT_URL,
) -> None:
    """Serve the Streamlit dashboard for the API at --url, with a read-scoped key (FRPO_DASHBOARD_API_KEY, or one
    created once in the data folder)."""
    from store.settings import get_settings

    key = os.environ.get("FRPO_DASHBOARD_API_KEY") or _stored_key(get_settings().data_dir / "dashboard.key", "read")
    env = {**os.environ, "FRPO_API_URL": url, "FRPO_DASHBOARD_API_KEY": key}
    typer.echo(f"dashboard: http://127.0.0.1:{port}  (API {url})")
    app_path = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(app_path), "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    os.execvpe(sys.executable, command, env)


def _embedded_admin_key(data_dir: Path) -> str:
    """The embedded service's admin key: created on first start, kept readable only by its owner."""
    return _stored_key(data_dir / "admin.key", "admin")


def _stored_key(path: Path, scope: str) -> str:
    """A key of `scope` kept in `path` (created on first use, readable only by its owner)."""
    if path.exists():
        return path.read_text().strip()
    from store.db import session_scope
    from store.queries import create_api_key

    path.parent.mkdir(parents=True, exist_ok=True)
    with session_scope() as session:
        key = create_api_key(session, name=f"embedded {scope}", scope=scope)
    # Born with mode 0600, never briefly readable by others; O_EXCL: a file that appeared meanwhile is not clobbered.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(key + "\n")
    return key


def _redact(url: str) -> str:
    """A database URL without its password, for printing."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
