"""A worker's template process: the ML stack imported once, every CPU job's training child forked from it.

    python -m workers.template --socket PATH --parent-pid PID     # started by the Celery worker (workers.tasks)

Why: a spawned child (`python -m workers.runner --train`) pays the interpreter start and ~10-20 s of importing torch,
transformers, trl, datasets and frpo_core on every job, before it loads a single weight; on the toy demo that is a
large share of each job. The template imports all of it once per worker, then waits on a Unix socket (in a folder
only its user can enter); for each job the runner connects and the template forks a child that already has every
module in memory. This is multiprocessing's forkserver idea, written out because the child must be the runner's
training child in every respect the runner relies on, which a `multiprocessing.Process` is not (it stays in its
parent's process group and dies with no one but the server):

- own session and process group (`setsid`), so a cancel or a lost lease kills it and all it started as a group;
- it dies with the runner that asked for it, however the runner dies: it holds its end of the runner's connection
  and exits when the runner's end closes (the kernel closes it when the runner dies, SIGKILL included), and with the
  template (PR_SET_PDEATHSIG), which in turn dies with its worker;
- its output goes to the job's log (the runner passes the log file's descriptor over the socket), its environment
  is the runner's, `ps` shows it as `workers.runner --train <run id> …`, and it runs `workers.stages.work` as a
  spawned child does, exiting with the same statuses (`SUPERSEDED_EXIT` included);
- no state leaks between jobs: each child is a fresh fork of the template, which itself never runs a job, never opens
  a database connection and never runs a tensor operation.

Fork safety is checked before the template serves (:func:`fork_hazard`): no Python thread besides the main one (a
lock held at fork time would stay held in the child forever), and CUDA never initialised (a forked CUDA context is
unusable). The native pools present after the imports (OpenBLAS's, jemalloc's background thread) reset themselves at
fork through their own pthread_atfork handlers; torch's intra-op pool does not exist yet (no operation has run), and
each child sets its thread count from its own environment. A job whose environment differs from the template's in
anything but FRPO_* settings and Celery's logging variables (:data:`PER_JOB_PREFIXES`) is refused, since some library
may have read it at import time (`ATEN_CPU_CAPABILITY`, `HF_HOME`), and so are jobs that set `gpu` (see
workers.runner): both are spawned as before.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from workers.launch import kill_with_parent
from workers.phases import PhaseClock, process_age

log = logging.getLogger(__name__)

PRELOAD = (
    "torch",
    "transformers",
    "datasets",
    "trl",
    "peft",
    "accelerate",
    "frpo_core.jobs.rl",
    "frpo_core.jobs.sft",
    "frpo_core.jobs.rewards",
    "frpo_core.safety.evaluation",
    "frpo_core.safety.judges",
    "frpo_core.safety.rewards",
    "workers.stages",
    "workers.sink",
)
"""What a training child imports before its job: all of it once in the template, or on every spawned child."""

SOCKET_ENV = "FRPO_TEMPLATE_SOCKET"
"""The environment variable through which a worker's pool processes find its template's socket."""

PER_JOB_PREFIXES = ("FRPO_", "CELERY_", "_MP_FORK_")
"""Variables a job's environment may set apart from the template's: the service's settings (read when used, after
the fork) and what Celery sets in its pool processes for its own logging (never read by the training child)."""

READY_TIMEOUT_SECONDS = 300.0
_HEADER = struct.Struct("!I")


def preload() -> None:
    """Import the ML stack (:data:`PRELOAD`), the models' and trainers' classes included (transformers is lazy)."""
    for name in PRELOAD:
        importlib.import_module(name)
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401  (resolves the lazy modules)
    from trl import GRPOTrainer, SFTTrainer  # noqa: F401


def fork_hazard() -> str | None:
    """Why forking jobs from this process would be unsafe, or None."""
    if threading.active_count() > 1:
        names = ", ".join(thread.name for thread in threading.enumerate() if thread is not threading.main_thread())
        return f"Python threads running besides the main one ({names})"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "CUDA is initialised"
    return None


def _die_with_parent(parent: int) -> None:
    """SIGKILL when the process that started us dies (Linux); exit now if it already has."""
    kill_with_parent()
    if os.getppid() != parent:
        os._exit(1)


# --- the wire: a length-prefixed JSON message; the request also carries the job log's descriptor ------------------
def _send(connection: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    payload = json.dumps(message).encode()
    data = _HEADER.pack(len(payload)) + payload
    if fds:
        sent = socket.send_fds(connection, [data], fds)
        data = data[sent:]
    connection.sendall(data)


def _receive(connection: socket.socket, with_fds: bool = False) -> tuple[dict | None, list[int]]:
    """One message (None at end of stream) and the descriptors that came with it."""
    fds: list[int] = []
    if with_fds:
        data, fds, _, _ = socket.recv_fds(connection, 1 << 16, 4)
    else:
        data = connection.recv(1 << 16)
    if not data:
        return None, fds
    while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
        more = connection.recv(1 << 16)
        if not more:
            return None, fds
        data += more
    (size,) = _HEADER.unpack_from(data)
    return json.loads(data[_HEADER.size : _HEADER.size + size]), fds


# --- the template ---------------------------------------------------------------------------------------------------
def serve(path: Path, parent: int) -> None:
    """Import, check, then fork one child per request until the parent dies; reap each child and tell its runner
    the exit status."""
    _die_with_parent(parent)
    worker_environment = _initial_environment()
    preload()
    # what the interpreter's start and the imports added (torch sets some): a spawned child would have it too
    imported_environment = {k: v for k, v in os.environ.items() if k not in worker_environment and k != SOCKET_ENV}
    hazard = fork_hazard()
    if hazard is not None:
        raise SystemExit(f"workers.template: not serving, forking would be unsafe: {hazard}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = path.with_name(f".{path.name}-{os.getpid()}")
    listener.bind(str(staging))
    listener.listen(16)
    os.rename(staging, path)  # the path appears only once connecting to it works
    print(f"workers.template ready on {path}", flush=True)
    connections: dict[int, socket.socket] = {}  # child pid -> its runner's connection
    while os.getppid() == parent:
        readable, _, _ = select.select([listener], [], [], 0.1)
        if readable:
            connection, _ = listener.accept()
            pid = _start_child(connection, listener, connections, worker_environment, imported_environment)
            if pid is not None:
                connections[pid] = connection
            else:
                connection.close()
        _reap(connections)


def _start_child(
    connection: socket.socket,
    listener: socket.socket,
    others: Mapping[int, socket.socket],
    worker_environment: Mapping[str, str],
    imported_environment: Mapping[str, str],
) -> int | None:
    """Fork the child `connection` asks for; returns its pid, or None if the request was refused (the runner then
    spawns the job instead). The child's environment is the request's plus what the imports set (as a spawned
    child's imports would have)."""
    connection.settimeout(10.0)
    try:
        request, fds = _receive(connection, with_fds=True)
    except (OSError, ValueError):
        return None
    if request is None or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return None
    differing = _differing_environment(request["env"], worker_environment)
    if differing:
        with contextlib.suppress(OSError):  # a runner gone meanwhile must not take the template down
            _send(connection, {"refused": f"its environment differs from the worker's in {', '.join(differing)}"})
        os.close(fds[0])
        return None
    pid = os.fork()
    if pid == 0:
        listener.close()
        for other in others.values():
            other.close()
        request["env"] = {**imported_environment, **request["env"]}
        _child(request, fds[0], connection)  # never returns
    os.close(fds[0])
    connection.settimeout(None)
    with contextlib.suppress(OSError):  # the runner is gone: its child sees the connection closed and exits
        _send(connection, {"pid": pid})
    return pid


def _initial_environment() -> dict[str, str]:
    """The environment this process was started with, i.e. the worker's (from /proc, not `os.environ`, which the
    interpreter's start-up and the imports may have added to)."""
    with open("/proc/self/environ", "rb") as handle:
        entries = [entry.split(b"=", 1) for entry in handle.read().split(b"\0") if b"=" in entry]
    return {os.fsdecode(name): os.fsdecode(value) for name, value in entries if os.fsdecode(name) != SOCKET_ENV}


def _differing_environment(env: Mapping[str, str], worker: Mapping[str, str]) -> list[str]:
    """Variables, other than :data:`PER_JOB_PREFIXES`, in which `env` differs from the worker's as the template
    started with it (before its imports)."""
    names = {name for name in set(env) | set(worker) if not name.startswith(PER_JOB_PREFIXES)}
    return sorted(name for name in names if env.get(name) != worker.get(name))


def _reap(connections: dict[int, socket.socket]) -> None:
    while connections:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = connections.pop(pid, None)
        if connection is not None:
            with contextlib.suppress(OSError):  # the runner may be gone: nobody to tell
                _send(connection, {"returncode": os.waitstatus_to_exitcode(status)})
            connection.close()


# --- the forked child -----------------------------------------------------------------------------------------------
def _child(request: dict, log_fd: int, runner: socket.socket) -> None:
    """Become the job's training child (see the module's docstring), run it, and exit; never returns into the
    template's loop, whatever happens."""
    code = 1
    try:
        clock = PhaseClock()
        clock.add("start", process_age())
        os.setsid()
        kill_with_parent()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(devnull)
        os.close(log_fd)
        _set_title(request["argv"])  # first: setproctitle finds the process's memory by its start-up environment
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = request["argv"]
        _die_with_runner(runner)
        code = _run_job(request, clock)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _set_title(argv: list[str]) -> None:
    """Show the child as the command a spawned child would have (`ps`, and the tests' process search)."""
    with contextlib.suppress(ImportError):
        from setproctitle import setproctitle

        setproctitle(" ".join(["python", "-m", "workers.runner", *argv[1:]]))


def _die_with_runner(runner: socket.socket) -> None:
    """Exit at once when the runner that asked for this job is gone: its end of the connection closes."""

    runner.settimeout(None)

    def watch() -> None:
        with contextlib.suppress(OSError):
            while runner.recv(1):
                pass
        print("workers.template: the runner that started this job is gone; exiting", file=sys.stderr, flush=True)
        os._exit(1)

    threading.Thread(target=watch, name="runner-watchdog", daemon=True).start()


def _run_job(request: dict, clock: PhaseClock) -> int:
    import torch

    from store.leases import AttemptSuperseded
    from store.settings import get_settings
    from workers.stages import work

    get_settings.cache_clear()  # settings come from the job's environment, not the template's
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    with clock.phase("imports"):
        preload()  # all in memory already: ~0 s, recorded so that both paths report the same phases
    resume = Path(request["resume"]) if request["resume"] else None
    try:
        work(
            uuid.UUID(request["run_id"]),
            os.environ["FRPO_DATABASE_URL"],
            Path(request["output_root"]),
            resume,
            request["attempt"],
            clock,
        )
    except AttemptSuperseded as superseded:
        from workers.runner import SUPERSEDED_EXIT

        log.warning("%s", superseded)
        return SUPERSEDED_EXIT
    return 0


# --- the runner's side ----------------------------------------------------------------------------------------------
class TemplateChild:
    """A training child forked by the template, with the part of `subprocess.Popen`'s interface the runner uses
    (`pid`, `returncode`, `wait`, `poll`). Its exit status comes over the connection; the connection's end closing
    without one means the template died, and the child with it (PR_SET_PDEATHSIG): SIGKILL."""

    def __init__(self, connection: socket.socket, pid: int) -> None:
        self.connection = connection
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        with contextlib.suppress(TimeoutError):
            self.wait(timeout=0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        readable, _, _ = select.select([self.connection], [], [], timeout)
        if not readable:
            raise subprocess.TimeoutExpired(f"training child {self.pid}", timeout)
        try:
            message, _ = _receive(self.connection)
        except OSError:
            message = None
        self.returncode = message["returncode"] if message else -signal.SIGKILL
        self.connection.close()
        return self.returncode


def fork_child(
    socket_path: str, argv: list[str], request: dict, env: Mapping[str, str], log_file
) -> TemplateChild | str:
    """Ask the template at `socket_path` for a training child; returns it, or why not (the caller then spawns)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(30.0)
        connection.connect(socket_path)
        message = {**request, "argv": argv, "env": dict(env), "cwd": os.getcwd()}
        _send(connection, message, [log_file.fileno()])
        reply, _ = _receive(connection)
    except OSError as error:
        connection.close()
        return f"the template at {socket_path} did not answer ({type(error).__name__}: {error})"
    if reply is None or "pid" not in reply:
        connection.close()
        return (reply or {}).get("refused", "the template closed the connection")
    connection.settimeout(None)
    return TemplateChild(connection, reply["pid"])


def start_template() -> tuple[subprocess.Popen, str]:
    """Start a template for this process (it dies with it) and wait until it serves; returns the process and its
    socket's path. The socket lives in a fresh folder only this user can enter."""
    folder = Path(tempfile.mkdtemp(prefix="frpo-template-"))
    path = folder / "socket"
    command = [sys.executable, "-m", "workers.template", "--socket", str(path), "--parent-pid", str(os.getpid())]
    # os.environ, as the runner's children get it; not the C environment (readline, say, adds LINES and COLUMNS)
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=dict(os.environ))
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the worker's template exited with {process.returncode} before serving")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the worker's template did not serve within {READY_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.1)
    return process, str(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.socket, args.parent_pid)


if __name__ == "__main__":
    main()
