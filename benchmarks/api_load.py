"""The API under many clients while a job trains: `GET /jobs`, `GET /jobs?limit=5` and `/healthz`, round-robin.

    python -m benchmarks.api_load [--clients 200] [--seconds 30] [--databases sqlite postgres] [--baseline REF]

For each database (the embedded SQLite file, and a fresh PostgreSQL database on 127.0.0.1:5432) it does what an
operator does: `frpo db upgrade`, `frpo keys create --scope admin`, a CPU worker (`frpo worker`) and the API (`frpo
api`, one uvicorn process), each its own process; submits a long FRPO job and waits until it trains (progress > 0);
then `--clients` clients (asyncio + httpx, one connection each) send requests back to back for `--seconds` s, each
given 30 s to answer. Printed per endpoint: requests, errors (a timeout, a refused connection or any status but 200),
throughput, p50 / p95 / max latency; and the job's progress during the load (the worker's writes went on).

`--baseline REF` runs the same against the code at git revision REF (`git archive`, into a temporary folder, with
this environment's packages), so before and after come out side by side from one run. Needs the train extra (the
worker) and, for PostgreSQL, the server on 127.0.0.1:5432 (FRPO_TEST_POSTGRES_URL elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from testkit.service import background, free_port, fresh_postgres_database, responds, wait_for

REPO = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get("FRPO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ENDPOINTS = ("/api/v1/jobs", "/api/v1/jobs?limit=5", "/api/v1/healthz")
REQUEST_TIMEOUT_S = 30.0
LONG_JOB = {"kind": "train", "method": "frpo", "max_steps": 100_000, "save_steps": 100_000}


@dataclass
class Endpoint:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: dict[str, int] = field(default_factory=dict)  # what went wrong -> how often

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass
class Result:
    label: str
    clients: int
    seconds: float
    endpoints: dict[str, Endpoint]
    progress: tuple[float | None, float | None]  # the training job's, before and after the load (None: no answer)

    @property
    def errors(self) -> int:
        return sum(e.error_count for e in self.endpoints.values())


@contextmanager
def code_at(revision: str | None) -> Iterator[Path]:
    """This checkout (None), or the tree of `revision` extracted into a temporary folder."""
    if revision is None:
        yield REPO
        return
    archive = subprocess.run(["git", "archive", revision], cwd=REPO, check=True, capture_output=True).stdout
    with tempfile.TemporaryDirectory(prefix="frpo-baseline-") as folder:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        yield Path(folder)


@contextmanager
def database(kind: str, data_dir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{data_dir / 'frpo.db'}"
    else:
        with fresh_postgres_database(POSTGRES_ADMIN_URL, "frpo_bench") as url:
            yield url


@contextmanager
def service(code: Path, database_url: str, data_dir: Path) -> Iterator[tuple[str, str]]:
    """`code`'s migrations, an admin key, a worker and the API, as processes; yields (API URL, admin key)."""
    env = {**os.environ, "PYTHONPATH": str(code), "FRPO_DATA_DIR": str(data_dir), "FRPO_DATABASE_URL": database_url}
    env.pop("FRPO_BROKER_URL", None)  # the embedded broker (SQLite, in data_dir)
    frpo = [sys.executable, "-c", "from cli.main import app; app()"]
    subprocess.run([*frpo, "db", "upgrade"], cwd=code, env=env, check=True, capture_output=True)
    created = subprocess.run(
        [*frpo, "keys", "create", "--scope", "admin", "--name", "bench"], cwd=code, env=env, check=True, text=True,
        capture_output=True,
    )  # fmt: skip
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        stack.enter_context(background([*frpo, "worker"], data_dir / "worker.log", env=env, cwd=code))
        stack.enter_context(background([*frpo, "api", "--port", str(port)], data_dir / "api.log", env=env, cwd=code))
        wait_for(lambda: responds(f"{url}/api/v1/healthz"), timeout=60, what="the API")
        yield url, key


def training_job(client: httpx.Client, timeout: float) -> str:
    """Submit LONG_JOB and wait until it has trained a step."""
    job_id = client.post("/api/v1/jobs", json=LONG_JOB).raise_for_status().json()["id"]

    def training() -> bool:
        job = client.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] not in ("queued", "running"):
            raise RuntimeError(f"the training job ended before the load: {job['status']} {job['error']}")
        return job["progress"] > 0

    wait_for(training, timeout=timeout, interval=1, what="the job to train")
    return job_id


async def load(url: str, key: str, clients: int, seconds: float) -> dict[str, Endpoint]:
    """`clients` clients sending requests back to back until `seconds` have passed (a request under way then is
    waited for), each with its own connection: one httpx client, its pool as large as the number of clients (an
    httpx client each would build 200 TLS contexts in the event loop first, and time that instead of the API).
    A request that has not answered in REQUEST_TIMEOUT_S counts as an error (a timeout)."""
    results = {path: Endpoint() for path in ENDPOINTS}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=REQUEST_TIMEOUT_S, limits=limits
    ) as http:
        deadline = time.monotonic() + seconds

        async def client(index: int) -> None:
            turn = index
            while time.monotonic() < deadline:
                path = ENDPOINTS[turn % len(ENDPOINTS)]
                turn += 1
                started = time.monotonic()
                try:
                    response = await asyncio.wait_for(http.get(path), REQUEST_TIMEOUT_S)
                except (httpx.HTTPError, TimeoutError) as error:
                    problem = type(error).__name__
                else:
                    problem = None if response.status_code == 200 else f"HTTP {response.status_code}"
                outcome = results[path]
                if problem is None:
                    outcome.latencies.append(time.monotonic() - started)
                else:
                    outcome.errors[problem] = outcome.errors.get(problem, 0) + 1

        await asyncio.gather(*(client(i) for i in range(clients)))
    return results


def measure(
    label: str, code: Path, kind: str, clients: int, seconds: float, train: bool, train_timeout: float = 600
) -> Result:
    with tempfile.TemporaryDirectory(prefix="frpo-load-") as folder:
        data_dir = Path(folder)
        with database(kind, data_dir) as database_url, service(code, database_url, data_dir) as (url, key):
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
                job_id = training_job(client, train_timeout) if train else None
                before = progress(client, job_id)
                endpoints = asyncio.run(load(url, key, clients, seconds))
                after = progress(client, job_id)
    return Result(label, clients, seconds, endpoints, (before, after))


def progress(client: httpx.Client, job_id: str | None) -> float | None:
    """The job's progress; None if the API does not answer within a minute (still wedged after the load)."""
    if job_id is None:
        return 0.0
    try:
        return client.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()["progress"]
    except httpx.HTTPError:
        return None


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else sum(values)


def report(results: list[Result]) -> str:
    lines = [
        f"{'code / database':<26} {'endpoint':<22} {'requests':>8} {'errors':>7} {'req/s':>7} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    ]
    for result in results:
        for path, outcome in result.endpoints.items():
            done = outcome.latencies
            ms = [1000 * x for x in done]
            figures = f"{percentile(ms, 50):>8.0f} {percentile(ms, 95):>8.0f} {max(ms):>8.0f}" if ms else " " * 26
            lines.append(
                f"{result.label:<26} {path.removeprefix('/api/v1'):<22} {len(done) + outcome.error_count:>8} "
                f"{outcome.error_count:>7} {len(done) / result.seconds:>7.0f} {figures}"
            )
            if outcome.errors:
                lines.append(f"{'':<26} errors: {outcome.errors}")
        before, after = (f"{p * LONG_JOB['max_steps']:.0f}" if p is not None else "no answer" for p in result.progress)
        lines.append(f"{result.label:<26} training job's steps before -> after the load: {before} -> {after}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"])
    parser.add_argument("--baseline", metavar="REF", help="also run the code at this git revision, for comparison")
    parser.add_argument("--no-train", dest="train", action="store_false", help="no training job during the load")
    args = parser.parse_args(argv)
    print(f"{args.clients} clients, {args.seconds:.0f} s each, {os.cpu_count()} CPUs, training: {args.train}")
    results = []
    for revision in [args.baseline, None] if args.baseline else [None]:
        name = revision or "this checkout"
        with code_at(revision) as code:
            for kind in args.databases:
                results.append(measure(f"{name} / {kind}", code, kind, args.clients, args.seconds, args.train))
                print(report(results[-1:]), flush=True)  # each as it ends: a long run shows progress
    if len(results) > 1:
        print("\n" + report(results))
    return results


if __name__ == "__main__":
    main()
