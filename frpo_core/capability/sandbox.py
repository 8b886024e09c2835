"""Run untrusted Python (model-written code) in a separate, limited process.

The code benchmarks (MBPP+ / HumanEval+, docs/method.md §3) execute what the model wrote against the dataset's tests.
That code is untrusted: it may loop forever, allocate without bound, open sockets or start processes. :func:`run_python`
runs it

- in a fresh interpreter (``python -I``: no user site, no ``PYTHON*`` variables, the script's folder not on the path)
  started with an environment holding nothing of the parent's (no tokens, no proxies, no ``HOME``), only thread caps
  so that numpy's BLAS does not reserve address space for a thread per core;
- in a temporary working directory, removed afterwards, with stdin closed;
- with ``resource.setrlimit`` limits set in ``preexec_fn``, i.e. in the child before the interpreter starts: CPU
  seconds (``RLIMIT_CPU``), address space (``RLIMIT_AS``), size of any file it writes, its captured output included
  (``RLIMIT_FSIZE``), and no core dumps; plus a wall-clock timeout after which its whole process group is killed;
- without network: in a new network namespace (only a downed loopback) where the kernel allows it (root, or
  ``CAP_SYS_ADMIN``), and in every case behind an audit hook (PEP 578), installed before the code runs and impossible
  to remove from Python, that refuses every ``socket.*`` event, starting processes (``os.fork``, ``subprocess``,
  ``os.system``, ``exec*``, ``posix_spawn``), signalling other processes and loading native libraries through ctypes.

This is process isolation, not a security boundary against a determined attacker (no seccomp, no chroot: the code can
read files the user can read). It is what the benchmark needs: a greedy model's buggy or runaway code cannot hang the
evaluation, exhaust the machine or reach the network.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_CLONE_NEWNET = 0x40000000

_RUNNER = """\
import sys

def _run():
    path, preload = sys.argv[1], [name for name in sys.argv[2].split(",") if name]
    with open(path, encoding="utf-8") as handle:
        code = compile(handle.read(), path, "exec")
    for name in preload:  # import native-library users (numpy) before ctypes loading is refused
        try:
            __import__(name)
        except ImportError:
            pass
    blocked = frozenset({BLOCKED})

    def audit(event, args):
        if event.startswith("socket.") or event in blocked:
            raise PermissionError(f"sandbox: {event} is not allowed (no network, no new processes)")

    sys.addaudithook(audit)
    exec(code, {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__})

_run()
"""

BLOCKED_EVENTS = (
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "pty.spawn",
    "ctypes.dlopen",
    "ctypes.dlsym",
    "ctypes.dlsym/handle",
)
"""Audit events refused inside the sandbox, besides every ``socket.*`` event."""

_SANDBOX_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one sandboxed run. The defaults suit one HumanEval+/MBPP+ problem with its tests."""

    cpu_seconds: int = 10
    memory_bytes: int = 2 * 1024**3
    wall_seconds: float = 30.0
    output_bytes: int = 4 * 1024**2
    preload: tuple[str, ...] = ("numpy",)  # imported before the audit hook; EvalPlus's tests use numpy

    def __post_init__(self) -> None:
        if self.cpu_seconds < 1 or self.memory_bytes < 64 * 1024**2 or self.wall_seconds <= 0 or self.output_bytes < 1:
            raise ValueError(f"{self}: need cpu_seconds ≥ 1, memory_bytes ≥ 64 MiB, wall_seconds > 0, output_bytes ≥ 1")


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed run did. ``limit`` names the limit that stopped it ("wall", "cpu", "memory", "output")."""

    returncode: int
    stdout: str
    stderr: str
    limit: str | None
    wall_seconds: float
    network_namespace: bool

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.limit is None


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@functools.cache
def network_namespace_available() -> bool:
    """Whether this process may give a child its own network namespace (probed once with a throwaway child)."""
    try:
        subprocess.run(["true"], preexec_fn=_unshare_network, check=True, capture_output=True, timeout=30)
    except (subprocess.SubprocessError, OSError):
        return False
    return True


def _unshare_network() -> None:
    if _libc().unshare(_CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _limit_child(limits: SandboxLimits, unshare: bool) -> None:
    """Runs in the child between fork and exec: only already-loaded modules, nothing that may take a lock."""
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if unshare:
        _unshare_network()


def run_python(code: str, *, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` as a Python script in the sandbox described in the module docstring and report what happened.

    Output reaching ``limits.output_bytes`` stops the run (``limit="output"``). A run stopped by the CPU limit reports
    ``limit="cpu"``; one whose allocation failed under the address-space limit (a ``MemoryError``) ``"memory"``; one
    still running after ``limits.wall_seconds`` is killed with its process group and reports ``"wall"``.
    """
    limits = limits or SandboxLimits()
    unshare = network_namespace_available()
    blocked = ", ".join(repr(event) for event in BLOCKED_EVENTS)
    with tempfile.TemporaryDirectory(prefix="frpo-sandbox-") as workdir:
        work = Path(workdir)
        (work / "runner.py").write_text(_RUNNER.replace("BLOCKED", blocked), encoding="utf-8")
        (work / "program.py").write_text(code, encoding="utf-8")
        with open(work / "stdout", "wb") as stdout, open(work / "stderr", "wb") as stderr:
            start = time.monotonic()
            process = subprocess.Popen(
                [sys.executable, "-I", "-B", "runner.py", "program.py", ",".join(limits.preload)],
                cwd=work,
                env={**_SANDBOX_ENV, "HOME": workdir, "TMPDIR": workdir},
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # its own process group, so a timeout kills everything it started
                preexec_fn=functools.partial(_limit_child, limits, unshare),
            )
            timed_out = False
            try:
                returncode = process.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                returncode = process.wait()
            elapsed = time.monotonic() - start
        out = _read(work / "stdout", limits.output_bytes)
        err = _read(work / "stderr", limits.output_bytes)
        overflow = max((work / name).stat().st_size for name in ("stdout", "stderr")) >= limits.output_bytes
    return SandboxResult(
        returncode=returncode,
        stdout=out,
        stderr=err,
        limit=_limit_hit(returncode, err, timed_out, overflow),
        wall_seconds=elapsed,
        network_namespace=unshare,
    )


def _read(path: Path, limit: int) -> str:
    with open(path, "rb") as handle:
        return handle.read(limit).decode("utf-8", errors="replace")


def _limit_hit(returncode: int, stderr: str, timed_out: bool, overflow: bool) -> str | None:
    if timed_out:
        return "wall"
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return "cpu"  # SIGXCPU at the soft limit, SIGKILL at the hard one
    if overflow:  # Python ignores SIGXFSZ: the write past RLIMIT_FSIZE fails with EFBIG and the program stops
        return "output"
    if returncode != 0 and _last_line(stderr).startswith("MemoryError"):
        return "memory"
    return None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_many(programs: Sequence[str], *, limits: SandboxLimits | None = None, workers: int = 1) -> list[SandboxResult]:
    """:func:`run_python` over ``programs`` with up to ``workers`` sandboxes at once, results in order.

    Starting sandboxes from threads is safe here although ``preexec_fn`` runs between fork and exec: it only calls
    ``setrlimit`` and ``unshare`` through modules loaded beforehand, so it takes no lock another thread might hold.
    """
    if workers < 1:
        raise ValueError(f"workers={workers} must be ≥ 1")
    if workers == 1:
        return [run_python(program, limits=limits) for program in programs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(functools.partial(run_python, limits=limits), programs))
