"""Private database and broker servers for fault tests: a PostgreSQL cluster and a Redis that a test starts on its
own ports and data folders, so it can stop and restart them mid-run while the machine's shared servers stay up.

PostgreSQL comes from the newest `/usr/lib/postgresql/*/bin` (`initdb`, `pg_ctl`); as root, where initdb refuses to
run, the cluster runs as the `postgres` user. Redis is `redis-server` with persistence off, as a restart that loses
the broker's memory is the harder case for the workers. `CeleryWorker` is a real worker process on them.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from testkit.service import free_port, wait_for

REPO = Path(__file__).resolve().parents[1]
POSTGRES_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(Path(path).parent.name))


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1:`port`, trust auth, user postgres; `restart()` is an outage."""

    def __init__(self) -> None:
        if not POSTGRES_BIN:
            raise RuntimeError("no /usr/lib/postgresql/*/bin: install the postgresql package")
        self.bin = Path(POSTGRES_BIN[-1])
        self.port = free_port()
        # under /tmp (not pytest's root-only tmp_path): the postgres user must reach it
        self.root = Path(tempfile.mkdtemp(prefix="frpo-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_owner = os.geteuid() == 0
        if self._as_owner:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` closes every connection (a restart, a failover), `immediate` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, down_seconds: float) -> None:
        """Stop, stay down `down_seconds` (connections and new ones fail meanwhile), start again."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *arguments: str) -> None:
        command = [str(self.bin / tool), *arguments]
        if self._as_owner:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr or result.stdout}\n{log}")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A started private PostgreSQL cluster, removed on the way out."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


class RedisServer:
    """A `redis-server` on 127.0.0.1:`port` with no persistence; `restart()` drops everything it held."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with open(self.root / f"redis-{self.port}.log", "a") as log:
            self.process = subprocess.Popen(command, cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._responds, 30, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def _responds(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False


@contextmanager
def redis_server(root: Path) -> Iterator[RedisServer]:
    """A started private Redis (its log under `root`), stopped on the way out."""
    server = RedisServer(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()


class CeleryWorker:
    """A `celery worker` process (queue cpu, one job at a time) in its own process group, output to `log_path`;
    `kill()` SIGKILLs the whole group, as a crash would."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "cpu"]
        command += ["--pool", "prefork", "-c", "1", "--loglevel", "INFO", "--without-mingle", "--without-gossip"]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
