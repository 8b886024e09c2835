"""The sandbox for model-written code: bubblewrap as an unprivileged user, no network, a read-only filesystem, a
process limit, an empty environment, and everything it started killed with it. Each hostile program below would
pass its (trivial) test if its attack worked; each must be scored as failed, and the worker must carry on."""

from __future__ import annotations

import os
import secrets
import sys
import time

import pytest

from frpo_core.capability.coding import CodeProblem, score_code
from frpo_core.capability.sandbox import (
    ISOLATION_ENV,
    SandboxLimits,
    SandboxUnavailable,
    run_many,
    run_python,
    sandbox_uid,
)

FAST = SandboxLimits(preload=())  # nothing to preload: these programs do not use numpy
SOLVE = CodeProblem("Hostile/0", "", "solve", "assert solve() == 1\n")
GOOD = "def solve():\n    return 1\n"


def scored(attack: str, limits: SandboxLimits = FAST) -> dict:
    """The score record of a program that runs ``attack`` and then solves :data:`SOLVE`."""
    score = score_code([SOLVE], [f"{attack}\n{GOOD}"], limits=limits)
    return score.details[0]


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker`` (the test's own never does)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            continue  # it exited meanwhile
    return found


def none_left(marker: str) -> bool:
    """No process holding ``marker`` is left, allowing the kernel a moment to tear down a killed PID namespace."""
    deadline = time.monotonic() + 2
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return processes_with(marker) == []


def test_a_known_good_solution_passes_and_a_wrong_one_fails():
    assert score_code([SOLVE], [GOOD], limits=FAST).pass_at_1 == 1.0
    assert score_code([SOLVE], ["def solve():\n    return 2\n"], limits=FAST).pass_at_1 == 0.0


def test_runs_as_another_user_in_a_scratch_folder_with_an_empty_environment(monkeypatch):
    monkeypatch.setenv("FRPO_TEST_TOKEN", "not-for-the-sandbox")
    result = run_python("import os\nprint(os.getuid())\nprint(os.getcwd())\nprint(sorted(os.environ))", limits=FAST)
    assert result.ok and result.isolation == "bubblewrap"
    uid, cwd, environ = result.stdout.splitlines()
    if os.geteuid() == 0:
        assert int(uid) == sandbox_uid() != 0
    assert cwd == "/tmp"
    assert "FRPO_TEST_TOKEN" not in environ and "HF_TOKEN" not in environ and "DATABASE" not in environ


def test_an_error_is_a_failure_with_its_traceback():
    result = run_python("raise ValueError('boom')", limits=FAST)
    assert not result.ok and result.returncode == 1 and result.limit is None
    assert "ValueError: boom" in result.stderr


@pytest.mark.parametrize("address", [("127.0.0.1", 5432), ("8.8.8.8", 53)])
def test_network_connections_fail(address):
    detail = scored(f"import socket\nsocket.create_connection({address!r}, timeout=2)")
    assert not detail["passed"]
    assert "ConnectionRefusedError" in detail["stderr"] or "Network is unreachable" in detail["stderr"]


def test_the_worker_environment_is_out_of_reach(monkeypatch):
    secret = secrets.token_hex(8)
    monkeypatch.setenv("FRPO_DATABASE_URL", f"postgresql://frpo:{secret}@db/frpo")
    attack = f"""
import os
seen = [repr(dict(os.environ))]
for pid in ("self", os.getppid(), 1, {os.getpid()}):
    try:
        seen.append(open(f"/proc/{{pid}}/environ").read())
    except OSError as error:
        print(error)
print(seen)
assert any("FRPO_DATABASE_URL" in text for text in seen)
"""
    detail = scored(attack)
    assert not detail["passed"] and "AssertionError" in detail["stderr"]
    assert secret not in detail["stderr"]


def test_files_outside_the_sandbox_cannot_be_read(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    database = data / "frpo.db"
    database.write_text("secret rows")
    database.chmod(0o644)  # readable by anyone who can reach it: only the mount namespace keeps it out
    monkeypatch.setenv("FRPO_DATA_DIR", str(data))
    detail = scored(f"assert open({str(database)!r}).read() == 'secret rows'")
    assert not detail["passed"] and "FileNotFoundError" in detail["stderr"]


def test_nothing_outside_the_scratch_folder_can_be_written(tmp_path):
    tmp_path.chmod(0o777)
    for target in (tmp_path / "escaped", os.path.join(sys.prefix, "escaped"), "/sandbox/program.py", "/usr/escaped"):
        detail = scored(f"open({str(target)!r}, 'w').write('x')")
        assert not detail["passed"], target
        assert "Read-only file system" in detail["stderr"] or "No such file" in detail["stderr"], target
    assert not (tmp_path / "escaped").exists() and not os.path.exists(os.path.join(sys.prefix, "escaped"))
    assert scored("open('/tmp/scratch.txt', 'w').write('x')")["passed"]  # the scratch folder is writable


def test_a_fork_bomb_is_stopped_by_the_process_limit_and_leaves_nothing_behind():
    marker = f"forkbomb-{secrets.token_hex(4)}"
    bomb = f"import os\nwhile True:\n    os.fork()  # {marker}"
    attack = f"import os, sys\nos.execv(sys.executable, [sys.executable, '-c', {bomb!r}])"
    start = time.monotonic()
    detail = scored(attack, SandboxLimits(preload=(), wall_seconds=10, processes=16))
    assert not detail["passed"] and time.monotonic() - start < 60
    assert none_left(marker)
    assert scored("")["passed"]  # the worker and the next sandbox are fine


def test_a_process_in_its_own_session_dies_with_the_sandbox():
    marker = f"sleeper-{secrets.token_hex(4)}"
    sleeper = f"import time\ntime.sleep(3)\nopen('/tmp/late', 'w').write('{marker}')"
    start = f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {sleeper!r}], start_new_session=True)"
    timed_out = scored(f"{start}\nimport time\ntime.sleep(60)", SandboxLimits(preload=(), wall_seconds=2))
    assert not timed_out["passed"] and timed_out["limit"] == "wall"
    assert none_left(marker)
    left_behind = scored(start)  # exits at once, its sleeper still running: the namespace takes the sleeper down
    assert left_behind["passed"] and none_left(marker)
    time.sleep(4)
    assert processes_with(marker) == []


def test_an_infinite_loop_is_killed_by_the_cpu_limit():
    start = time.monotonic()
    detail = scored("while True:\n    pass", SandboxLimits(cpu_seconds=1, wall_seconds=60, preload=()))
    assert detail["limit"] == "cpu" and not detail["passed"]
    assert time.monotonic() - start < 30  # well before the wall limit: the CPU limit stopped it


def test_a_memory_hog_is_stopped_by_the_memory_limit():
    limits = SandboxLimits(memory_bytes=256 * 1024**2, preload=())
    result = run_python("blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 1024**2))", limits=limits)
    assert result.limit == "memory" and not result.ok
    assert "MemoryError" in result.stderr


def test_filling_the_scratch_folder_stops_at_its_size():
    limits = SandboxLimits(preload=(), scratch_bytes=4 * 1024**2)
    result = run_python("for i in range(100):\n    open(f'/tmp/{i}', 'wb').write(bytes(1024**2))", limits=limits)
    assert not result.ok and "No space left on device" in result.stderr


def test_a_sleeping_program_is_killed_at_the_wall_limit():
    result = run_python("import time\ntime.sleep(60)", limits=SandboxLimits(wall_seconds=1, preload=()))
    assert result.limit == "wall" and not result.ok
    assert result.wall_seconds < 10


def test_flooding_output_is_stopped_at_the_output_limit():
    result = run_python("while True:\n    print('x' * 1000)", limits=SandboxLimits(output_bytes=100_000, preload=()))
    assert result.limit == "output" and not result.ok
    assert len(result.stdout) <= 100_000


def test_numpy_works_inside():
    result = run_python("import numpy as np\nprint(np.allclose([0.1 + 0.2], [0.3]))")
    assert result.ok and result.stdout.strip() == "True"


def test_run_many_keeps_the_order():
    programs = [f"print({i} * {i})" for i in range(4)]
    for workers in (1, 2):
        results = run_many(programs, limits=FAST, workers=workers)
        assert [result.stdout.strip() for result in results] == ["0", "1", "4", "9"]


def test_without_bubblewrap_nothing_runs_and_the_error_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        score_code([SOLVE], [GOOD], limits=FAST)


def test_an_unknown_isolation_setting_is_refused(monkeypatch):
    monkeypatch.setenv(ISOLATION_ENV, "none")
    with pytest.raises(ValueError, match="FRPO_SANDBOX='none'"):
        run_python(GOOD, limits=FAST)


def test_the_weak_fallback_runs_only_when_chosen_and_refuses_processes_and_native_libraries(monkeypatch):
    monkeypatch.setenv(ISOLATION_ENV, "weak")
    assert run_python("print(1)", limits=FAST).isolation == "weak"
    for code in (
        "import os\nos.fork()",
        "import subprocess\nsubprocess.run(['true'])",
        "import socket\nsocket.socket()",
        "import ctypes\nctypes.CDLL(None)",
    ):
        result = run_python(code, limits=FAST)
        assert not result.ok and "PermissionError: sandbox:" in result.stderr, code
    result = run_python("import numpy as np\nprint(np.allclose([0.1 + 0.2], [0.3]))")  # preloaded before the hook
    assert result.ok and result.stdout.strip() == "True"


def test_no_user_or_network_namespace_can_be_made_inside():
    attack = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
assert libc.unshare(0x10000000) == 0 or libc.unshare(0x40000000) == 0  # CLONE_NEWUSER, CLONE_NEWNET
"""
    assert not scored(attack)["passed"]


def test_the_sandbox_user_must_be_a_numeric_non_root_id(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("only a root worker switches users")
    for value in ("0", "nobody"):
        monkeypatch.setenv("FRPO_SANDBOX_UID", value)
        with pytest.raises(ValueError, match="FRPO_SANDBOX_UID"):
            run_python(GOOD, limits=FAST)


def test_an_interpreter_under_tmp_runs_isolated_beside_the_scratch_folder(tmp_path):
    """A clone (and its .venv) under /tmp, as CI's and the demo test's are: the sandbox's /tmp scratch must not hide
    the interpreter bound beneath it (it did: `execvp …/.venv/bin/python: No such file or directory`)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    if os.geteuid() == 0:  # the sandbox user must traverse pytest's 0700 folders, as scripts/sandbox-access lets it
        subprocess.run([str(root / "scripts" / "sandbox-access")], check=True, env={**os.environ, "PYTHON": python})
    program = "import sys; open('/tmp/x', 'w').write(sys.prefix); print(open('/tmp/x').read())"
    check = f"from frpo_core.capability.sandbox import run_python; r = run_python({program!r}); print(r.stdout, end='')"
    done = subprocess.run(
        [python, "-c", check], capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(venv)  # ran as that interpreter, and wrote its scratch folder
