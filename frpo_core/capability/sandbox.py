"""Run untrusted Python (model-written code) in a separate, limited process.

The code benchmarks (MBPP+ / HumanEval+) execute what the model wrote against the dataset's tests. That code is
hostile until shown otherwise: it may loop, fork without end, open sockets, read the worker's secrets or write where
the worker can. :func:`run_python` runs it under bubblewrap (``bwrap``, the ``bubblewrap`` package), an existing
isolation tool, never behind Python-level guards alone:

- as a separate unprivileged user: a worker running as root drops to ``FRPO_SANDBOX_UID`` (default 65534, "nobody")
  before starting ``bwrap``, which then builds the sandbox in an unprivileged user namespace (no capabilities outside
  it, none inside, no nested user namespaces), so root's files and processes are another user's;
- in new network, PID, IPC, UTS, cgroup and mount namespaces: only a loopback device of its own; it sees its own
  processes only, and when its first process exits or the run is killed the namespace's init dies and the kernel
  kills every process it started, ``setsid`` or not (``--die-with-parent``, ``--new-session``);
- in a filesystem of its own, read-only but for size-limited tmpfs at ``/tmp`` (its working directory) and
  ``/dev/shm``, gone with the run: ``/usr``, the dynamic loader's files, the interpreter's prefixes (base Python and
  virtual environment), the program at ``/sandbox`` and a minimal ``/dev``; no ``/proc``, no other ``/etc`` file,
  nothing of the data directory, the repository or ``/root``;
- with an environment holding nothing of the worker's (no database URL, tokens or proxies), only thread caps so that
  numpy's BLAS does not reserve address space for a thread per core;
- under ``resource`` limits: CPU seconds, address space, size of any file it writes (its captured output included),
  open files, no core dumps, and processes and threads (``RLIMIT_NPROC``, set inside the user namespace so that it
  counts that sandbox's processes only); plus a wall-clock timeout.

When bubblewrap cannot build that sandbox (not installed, user namespaces refused, the interpreter unreadable by the
sandbox user) the run raises :class:`SandboxUnavailable` naming the cause and the fix: nothing runs and nothing is
scored. ``FRPO_SANDBOX=weak`` is the operator's explicit opt-in to the weak fallback (a fresh ``python -I`` with the
limits above minus the user and namespaces, behind a PEP 578 audit hook refusing sockets, new processes and ctypes
loading), which keeps buggy code from hanging the run but does not hold hostile code.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ISOLATION_ENV = "FRPO_SANDBOX"
"""``bubblewrap`` (the default) or ``weak`` (the explicit opt-in to the audit-hook fallback)."""
UID_ENV = "FRPO_SANDBOX_UID"
"""The user a root worker runs sandboxes as (default 65534); it must own no files the worker cares about."""

_RUNNER = """\
import resource
import sys

def _run():
    path, processes, preload = sys.argv[1], int(sys.argv[2]), [name for name in sys.argv[3].split(",") if name]
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    with open(path, encoding="utf-8") as handle:
        code = compile(handle.read(), path, "exec")
    blocked = frozenset({BLOCKED})
    if blocked:  # the weak fallback only
        for name in preload:  # import native-library users (numpy) before ctypes loading is refused
            try:
                __import__(name)
            except ImportError:
                pass

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
"""Audit events the weak fallback refuses, besides every ``socket.*`` event (bubblewrap needs no such list)."""

_SANDBOX_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "LANG": "C.UTF-8",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}
_LOADER_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
_TOP_LEVEL_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # symlinks into /usr on merged-/usr
_CODE, _SCRATCH = "/sandbox", "/tmp"  # inside: the program (read-only) and the writable scratch folder


class SandboxUnavailable(RuntimeError):
    """The isolation cannot be built here; the message names the cause and the fix. Nothing was run."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one sandboxed run. The defaults suit one HumanEval+/MBPP+ problem with its tests."""

    cpu_seconds: int = 10
    memory_bytes: int = 2 * 1024**3
    wall_seconds: float = 30.0
    output_bytes: int = 4 * 1024**2
    processes: int = 32  # processes and threads of one sandbox
    open_files: int = 256
    scratch_bytes: int = 64 * 1024**2  # the size of the writable /tmp
    preload: tuple[str, ...] = ("numpy",)  # the weak fallback imports these before its audit hook

    def __post_init__(self) -> None:
        if self.cpu_seconds < 1 or self.memory_bytes < 64 * 1024**2 or self.wall_seconds <= 0 or self.output_bytes < 1:
            raise ValueError(f"{self}: need cpu_seconds ≥ 1, memory_bytes ≥ 64 MiB, wall_seconds > 0, output_bytes ≥ 1")
        if self.processes < 1 or self.open_files < 16 or self.scratch_bytes < 1024**2:
            raise ValueError(f"{self}: need processes ≥ 1, open_files ≥ 16 and scratch_bytes ≥ 1 MiB")


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed run did. ``limit`` names the limit that stopped it ("wall", "cpu", "memory", "output");
    ``isolation`` is ``"bubblewrap"`` or ``"weak"``."""

    returncode: int
    stdout: str
    stderr: str
    limit: str | None
    wall_seconds: float
    isolation: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.limit is None


def isolation_mode() -> str:
    """The isolation the operator chose with ``FRPO_SANDBOX``: ``"bubblewrap"`` unless set to ``"weak"``."""
    mode = os.environ.get(ISOLATION_ENV, "bubblewrap")
    if mode not in ("bubblewrap", "weak"):
        raise ValueError(f"{ISOLATION_ENV}={mode!r} must be 'bubblewrap' (the default) or 'weak' (no real isolation)")
    return mode


def sandbox_uid() -> int | None:
    """The user sandboxes run as when the worker is root (``FRPO_SANDBOX_UID``, default 65534); None otherwise, as
    only root may switch users (the sandbox then runs as the worker's user, still in its own namespaces)."""
    if os.geteuid() != 0:
        return None
    value = os.environ.get(UID_ENV, "65534")
    if not value.isdigit() or int(value) == 0:
        raise ValueError(f"{UID_ENV}={value!r} must be a non-zero numeric user id, e.g. 65534 (nobody)")
    return int(value)


def check_isolation() -> None:
    """Raise :class:`SandboxUnavailable` unless bubblewrap can run this interpreter isolated (probed once per user
    and ``bwrap``)."""
    problem = _probe(sandbox_uid(), shutil.which("bwrap"))
    if problem:
        raise SandboxUnavailable(problem)


@functools.cache
def _probe(uid: int | None, bwrap: str | None) -> str | None:
    if bwrap is None:
        return "bubblewrap is not installed: apt-get install bubblewrap (FRPO_SANDBOX=weak runs without isolation)"
    with tempfile.TemporaryDirectory(prefix="frpo-sandbox-probe-") as code:
        os.chmod(code, 0o755)
        command = [*_bwrap_command(code, SandboxLimits()), sys.executable, "-I", "-c", "print('ok')"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, **_user_switch(uid))
        except (OSError, subprocess.SubprocessError) as error:
            return f"bubblewrap did not start: {error}"
    if done.returncode == 0 and done.stdout.strip() == "ok":
        return None
    return (
        f"bubblewrap could not isolate {sys.executable} as uid {uid if uid is not None else os.getuid()}: "
        f"{(done.stderr or done.stdout).strip()[-500:]}. It needs unprivileged user namespaces (in Docker: the "
        "security options in the README's 'Running model-written code' section) and an interpreter, standard "
        f"library and site-packages that user can read ({sys.base_prefix}, {sys.prefix} and their parents). "
        "FRPO_SANDBOX=weak runs without this isolation."
    )


def _python_roots() -> list[str]:
    """The interpreter's prefixes (virtual environment, base installation), outermost first, none inside another."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    candidates.add(str(Path(os.path.realpath(sys.executable)).parent.parent))
    roots: list[str] = []
    for path in sorted(os.path.realpath(candidate) for candidate in candidates | {"/usr"}):
        if not any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots):
            roots.append(path)
    return roots


def _bwrap_command(code: str, limits: SandboxLimits) -> list[str]:
    """The bwrap command line up to ``--``; ``code`` (the program's folder) appears read-only at ``/sandbox``."""
    command = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
    command += ["--clearenv", "--hostname", "sandbox", "--dev", "/dev", "--remount-ro", "/dev"]
    # the scratch tmpfs before the binds: an interpreter or venv under /tmp (a clone there) is bound on top of it,
    # where a tmpfs mounted after would hide it
    command += ["--size", str(limits.scratch_bytes), "--tmpfs", _SCRATCH]
    for link in _TOP_LEVEL_LINKS:
        if os.path.islink(link):
            command += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            command += ["--ro-bind", link, link]
    for path in _python_roots():
        command += ["--ro-bind", path, path]
    for path in _LOADER_FILES:
        command += ["--ro-bind-try", path, path]
    for name, value in {**_SANDBOX_ENV, "HOME": _SCRATCH, "TMPDIR": _SCRATCH}.items():
        command += ["--setenv", name, value]
    command += ["--ro-bind", code, _CODE]
    command += ["--size", str(limits.scratch_bytes), "--tmpfs", "/dev/shm"]  # multiprocessing's semaphores
    # the root (a tmpfs holding the mount points) read-only last; the scratch tmpfs stays writable
    return [*command, "--remount-ro", "/", "--chdir", _SCRATCH, "--"]


def _user_switch(uid: int | None) -> dict:
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


def _limit_child(limits: SandboxLimits) -> None:
    """Runs in the child between fork and exec: only already-loaded modules, nothing that may take a lock."""
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_python(code: str, *, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` as a Python script in the sandbox described in the module docstring and report what happened.

    Output reaching ``limits.output_bytes`` stops the run (``limit="output"``). A run stopped by the CPU limit reports
    ``limit="cpu"``; one whose allocation failed under the address-space limit (a ``MemoryError``) ``"memory"``; one
    still running after ``limits.wall_seconds`` is killed with everything it started and reports ``"wall"``. Raises
    :class:`SandboxUnavailable` (before running anything) where the isolation cannot be built.
    """
    limits = limits or SandboxLimits()
    mode = isolation_mode()
    uid = sandbox_uid() if mode == "bubblewrap" else None
    if mode == "bubblewrap":
        check_isolation()
    blocked = ", ".join(repr(event) for event in BLOCKED_EVENTS) if mode == "weak" else ""
    with tempfile.TemporaryDirectory(prefix="frpo-sandbox-") as workdir:
        work, folder = Path(workdir), Path(workdir) / "code"
        work.chmod(0o711)  # the sandbox user (bwrap) reaches code/, but cannot list or open the output files
        folder.mkdir(mode=0o755)
        (folder / "runner.py").write_text(_RUNNER.replace("BLOCKED", blocked), encoding="utf-8")
        (folder / "program.py").write_text(code, encoding="utf-8")
        arguments = [str(limits.processes), ",".join(limits.preload)]
        if mode == "bubblewrap":
            runner = [sys.executable, "-I", "-B", f"{_CODE}/runner.py", f"{_CODE}/program.py", *arguments]
            command, options = [*_bwrap_command(str(folder), limits), *runner], _user_switch(uid)
        else:
            command = [sys.executable, "-I", "-B", "runner.py", "program.py", *arguments]
            options = {"cwd": folder, "env": {**_SANDBOX_ENV, "HOME": str(folder), "TMPDIR": str(folder)}}
        with (
            open(work / "stdout", "wb", opener=_private) as stdout,
            open(work / "stderr", "wb", opener=_private) as stderr,
        ):
            start = time.monotonic()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=functools.partial(_limit_child, limits),
                **options,
            )
            timed_out = False
            try:
                returncode = process.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                # bwrap's death kills the sandbox's PID namespace (--die-with-parent), so everything in it
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                returncode = process.wait()
            elapsed = time.monotonic() - start
        if mode == "bubblewrap" and returncode > 128:
            returncode = 128 - returncode  # bwrap reports a child killed by signal N as 128 + N; make it -N
        out = _read(work / "stdout", limits.output_bytes)
        err = _read(work / "stderr", limits.output_bytes)
        overflow = max((work / name).stat().st_size for name in ("stdout", "stderr")) >= limits.output_bytes
    return SandboxResult(
        returncode=returncode,
        stdout=out,
        stderr=err,
        limit=_limit_hit(returncode, err, timed_out, overflow),
        wall_seconds=elapsed,
        isolation=mode,
    )


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


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

    Starting sandboxes from threads is safe although ``preexec_fn`` runs between fork and exec: it only calls
    ``setrlimit`` through a module loaded beforehand, so it takes no lock another thread might hold.
    """
    if workers < 1:
        raise ValueError(f"workers={workers} must be ≥ 1")
    if workers == 1:
        return [run_python(program, limits=limits) for program in programs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(functools.partial(run_python, limits=limits), programs))
