"""Metric ingest and read against MLflow's tracking server, same machine, same run, same points.

    pip install -e ".[bench]"     # MLflow, and the train extra: the worker's sink is a transformers callback
    python -m benchmarks.metrics_store [--points 100000] [--max-points 2000] [--repeats 3]

Needs PostgreSQL (FRPO_BENCH_POSTGRES_URL, default the tests' trust-auth server on 127.0.0.1:5432): each side gets
a fresh database of its own, dropped at the end. Target (the issue): ≥ 10× MLflow on both figures.

Ingest: `--points` points of one run (10 keys × points/10 steps, trainer-like values), and a second run holding one
key of `--points` steps. Ours goes the worker's way: fake `on_log` calls into `workers.sink.StoreSink` (the
runner's defaults: batches of up to 5000 points or 1 s, COPY + merge into PostgreSQL) until everything is committed.
MLflow's goes the client's way: `MlflowClient.log_batch` in 1000-metric calls (its per-call limit) to a real
`mlflow server` over HTTP, on PostgreSQL too. Note the shapes differ by design: our worker writes the store directly,
MLflow's client has to go through its server.

Read: one run's `--points`-step key for a chart. Ours: `GET /api/v1/runs/{id}/metrics?max_points=…` on uvicorn
(server-side MinMaxLTTB downsampling). MLflow has no server-side downsampling: `get_metric_history` returns every
point, so our full-series read (`max_points` = all) is printed too, for a like-for-like transfer. Both servers run
one worker process; MLflow's background job runner (GenAI jobs, nothing to do with metrics) is switched off so it
does not compete for the CPU. Reads are interleaved, one warm-up each, median of `--repeats`.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import fastapi
import httpx
import mlflow
import psycopg
import sqlalchemy
import uvicorn
from mlflow import MlflowClient
from mlflow.entities import Metric
from sqlalchemy import Engine, text
from transformers import TrainerControl, TrainerState

from store.db import make_engine, session_scope
from store.leases import Attempt
from store.metrics import BATCH_SIZE
from store.migrate import upgrade
from store.models import RunStatus
from store.queries import create_api_key
from testkit.service import create_run, free_port, fresh_postgres_database, metric_count
from workers.sink import StoreSink

ADMIN_URL = os.environ.get("FRPO_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
KEYS = (
    "loss",
    "grad_norm",
    "learning_rate",
    "reward",
    "reward_std",
    "kl",
    "entropy",
    "completions/mean_length",
    "clip_ratio/region_mean",
    "frpo/penalty",
)
LONG_KEY = "loss"
MLFLOW_BATCH = 1000  # MLflow's limit of metrics per log_batch call
SERVER_START_S = 180.0


# --- the workload: the same points for both sides -------------------------------------------------------------------
def trainer_logs(keys: tuple[str, ...], steps: int, seed: int = 0) -> list[dict[str, float]]:
    """One Trainer-like log dict per step: decaying, noisy, differently scaled floats (not constants, which a store
    or a wire format could compress away)."""
    rng = random.Random(seed)
    logs = []
    for step in range(1, steps + 1):
        decay = math.exp(-step / (steps / 3))
        logs.append({key: (i + 1) * (0.1 + decay) * (1 + 0.05 * rng.gauss(0.0, 1.0)) for i, key in enumerate(keys)})
    return logs


# --- processes and databases --------------------------------------------------------------------------------------


@contextmanager
def server(command: list[str], health_url: str, log_path: Path, env: dict[str, str]) -> Iterator[None]:
    """Run `command` in its own process group until `health_url` answers 200; kill the whole group on the way out
    (mlflow server and uvicorn both fork children)."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}; see {log_path}:\n{tail(log_path)}")
            try:
                if httpx.get(health_url, timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} not healthy after {SERVER_START_S:.0f} s:\n{tail(log_path)}")
            time.sleep(0.3)
        yield
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM the process group, SIGKILL whatever is left of it after `grace_s`."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        if group_gone(process, wait_s):
            break
    process.wait(5.0)


def group_gone(process: subprocess.Popen, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        process.poll()  # reap the leader, so a finished group reads as gone
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- ours -----------------------------------------------------------------------------------------------------------
def ingest_ours(engine: Engine, logs: list[dict[str, float]]) -> tuple[uuid.UUID, float]:
    """A running run fed through the worker's StoreSink, as the Trainer would call it; seconds until all committed."""
    run_id = create_run(engine, columns={"status": RunStatus.running, "attempts": 1})
    state, control = TrainerState(max_steps=len(logs)), TrainerControl()
    sink = StoreSink(engine, Attempt(run_id, 1))  # the runner's defaults
    start = time.perf_counter()
    sink.on_train_begin(None, state, control)
    for step, entry in enumerate(logs, start=1):
        state.global_step = step
        sink.on_log(None, state, control, logs=entry)
    sink.on_train_end(None, state, control)  # drains the queue and stops the writer
    seconds = time.perf_counter() - start
    expected = sum(len(entry) for entry in logs)
    if (stored := metric_count(engine, run_id)) != expected:
        raise RuntimeError(f"our store holds {stored} points of run {run_id}, expected {expected}")
    return run_id, seconds


def read_ours(client: httpx.Client, run_id: uuid.UUID, key: str, max_points: int) -> Callable[[], int]:
    def read() -> int:
        response = client.get(f"/api/v1/runs/{run_id}/metrics", params={"keys": key, "max_points": max_points})
        response.raise_for_status()
        return len(response.json()["series"][key]["steps"])

    return read


# --- MLflow ---------------------------------------------------------------------------------------------------------
def ingest_mlflow(client: MlflowClient, experiment_id: str, logs: list[dict[str, float]]) -> tuple[str, float]:
    """The same points as one MLflow run, in full log_batch calls, step-major like a training loop logs them."""
    run_id = client.create_run(experiment_id).info.run_id
    now_ms = int(time.time() * 1000)
    metrics = [
        Metric(key, value, now_ms, step) for step, entry in enumerate(logs, start=1) for key, value in entry.items()
    ]
    start = time.perf_counter()
    for begin in range(0, len(metrics), MLFLOW_BATCH):
        client.log_batch(run_id, metrics=metrics[begin : begin + MLFLOW_BATCH], synchronous=True)
    seconds = time.perf_counter() - start
    return run_id, seconds


def read_mlflow(client: MlflowClient, run_id: str, key: str) -> Callable[[], int]:
    def read() -> int:
        return len(client.get_metric_history(run_id, key))

    return read


# --- the benchmark --------------------------------------------------------------------------------------------------
def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    returned = fn()
    return time.perf_counter() - start, returned


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000, help="points per ingest run and in the long series")
    parser.add_argument("--max-points", type=int, default=2000, help="what the chart asks for")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.points % len(KEYS) or args.points < 10 * len(KEYS):
        parser.error(f"--points must be a multiple of {len(KEYS)} and at least {10 * len(KEYS)}")

    wide_logs = trainer_logs(KEYS, args.points // len(KEYS), seed=0)
    long_logs = [{LONG_KEY: entry[LONG_KEY]} for entry in trainer_logs((LONG_KEY,), args.points, seed=1)]
    full_points = min(args.points, 100_000)  # the API's own cap on max_points

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="frpo-bench-")))
        ours_url = stack.enter_context(fresh_postgres_database(ADMIN_URL, "frpo_bench_ours"))
        mlflow_url = stack.enter_context(fresh_postgres_database(ADMIN_URL, "frpo_bench_mlflow"))
        upgrade(ours_url)
        engine = make_engine(ours_url)
        stack.callback(engine.dispose)
        with session_scope(engine) as session:
            api_key = create_api_key(session, "metrics-bench", "read")
        with engine.connect() as connection:
            pg_version = connection.execute(text("SHOW server_version")).scalar_one()

        # our API, as deployed: uvicorn on the app factory, one worker, reading the same database
        api_port, mlflow_port = free_port(), free_port()
        api_env = os.environ | {
            "FRPO_DATABASE_URL": ours_url,
            "FRPO_BROKER_URL": "redis://127.0.0.1:6379/15",
            "FRPO_DATA_DIR": str(tmp / "frpo"),
        }
        api_cmd = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory"]
        api_cmd += ["--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"]
        stack.enter_context(server(api_cmd, f"http://127.0.0.1:{api_port}/api/v1/healthz", tmp / "api.log", api_env))

        mlflow_env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        mlflow_cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", mlflow_url]
        mlflow_cmd += ["--default-artifact-root", str(tmp / "mlartifacts"), "--artifacts-destination"]
        mlflow_cmd += [str(tmp / "mlartifacts"), "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"]
        mlflow_health = f"http://127.0.0.1:{mlflow_port}/health"
        stack.enter_context(server(mlflow_cmd, mlflow_health, tmp / "mlflow.log", mlflow_env))
        mlflow_client = MlflowClient(tracking_uri=f"http://127.0.0.1:{mlflow_port}")
        experiment_id = mlflow_client.create_experiment("metrics-bench")

        # 1. ingest: the wide run (10 keys), then the long one (1 key), each side in turn
        ingest: dict[str, dict[str, float]] = {"wide": {}, "long": {}}
        _, ingest["wide"]["ours"] = ingest_ours(engine, wide_logs)
        _, ingest["wide"]["mlflow"] = ingest_mlflow(mlflow_client, experiment_id, wide_logs)
        ours_long, ingest["long"]["ours"] = ingest_ours(engine, long_logs)
        mlflow_long, ingest["long"]["mlflow"] = ingest_mlflow(mlflow_client, experiment_id, long_logs)

        # 2. read, interleaved so machine noise hits every variant alike
        http = stack.enter_context(
            httpx.Client(
                base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {api_key}"}, timeout=120
            )
        )
        readers: dict[str, Callable[[], int]] = {
            f"ours, downsampled to {args.max_points}": read_ours(http, ours_long, LONG_KEY, args.max_points),
            f"ours, full series (max_points={full_points})": read_ours(http, ours_long, LONG_KEY, full_points),
            "MLflow get_metric_history (full)": read_mlflow(mlflow_client, mlflow_long, LONG_KEY),
        }
        returned = {name: fn() for name, fn in readers.items()}  # warm-up
        times: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(args.repeats):
            for name, fn in readers.items():
                seconds, returned[name] = timed(fn)
                times[name].append(seconds)
        if returned["MLflow get_metric_history (full)"] != args.points:
            raise RuntimeError(f"MLflow returned {returned['MLflow get_metric_history (full)']} points")

    print(
        f"metric store vs MLflow tracking server, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"PostgreSQL {pg_version} (both sides, fresh databases); mlflow {mlflow.__version__}, SQLAlchemy "
        f"{sqlalchemy.__version__}, psycopg {psycopg.__version__}, FastAPI {fastapi.__version__}, uvicorn "
        f"{uvicorn.__version__}"
    )
    print(
        f"ingest: ours = worker StoreSink ({BATCH_SIZE}-point batches or 1 s, COPY + merge) straight to "
        f"PostgreSQL; MLflow = MlflowClient.log_batch ({MLFLOW_BATCH} metrics/call) over HTTP, one call at a time"
    )
    print(f"{'ingest run':<30}{'ours pts/s':>14}{'MLflow pts/s':>14}{'ours/MLflow':>13}")
    shapes = {
        "wide": f"{len(KEYS)} keys × {len(wide_logs)} steps",
        "long": f"1 key × {len(long_logs)} steps",
    }
    for shape, seconds in ingest.items():
        ours_rate, mlflow_rate = args.points / seconds["ours"], args.points / seconds["mlflow"]
        print(f"{shapes[shape]:<30}{ours_rate:>14,.0f}{mlflow_rate:>14,.0f}{ours_rate / mlflow_rate:>12.1f}×")
    print(
        f"read: one key of {args.points} points over HTTP, persistent clients, median of {args.repeats} after one "
        "warm-up; MLflow has no server-side downsampling, it always returns every point"
    )
    median = {name: statistics.median(t) for name, t in times.items()}
    mlflow_read = median["MLflow get_metric_history (full)"]
    print(f"{'read':<44}{'points':>8}{'median ms':>12}{'MLflow/this':>13}")
    for name, seconds in median.items():
        print(f"{name:<44}{returned[name]:>8}{1e3 * seconds:>12.1f}{mlflow_read / seconds:>12.1f}×")
    wide = ingest["wide"]
    print(f"ingest ours / MLflow = {wide['mlflow'] / wide['ours']:.1f}× ({shapes['wide']}; target ≥ 10)")
    print(
        f"read MLflow / ours = {mlflow_read / median[f'ours, downsampled to {args.max_points}']:.1f}× (chart read, "
        f"{args.max_points} of {args.points} points; target ≥ 10)"
    )


if __name__ == "__main__":
    main()
