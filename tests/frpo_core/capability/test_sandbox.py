"""The sandbox for model-written code: own process, no network, CPU / memory / output / wall limits, temp directory."""

from __future__ import annotations

import time

from frpo_core.capability.sandbox import SandboxLimits, network_namespace_available, run_many, run_python

FAST = SandboxLimits(preload=())  # nothing to preload: these programs do not use numpy


def test_runs_a_program_in_a_temporary_directory_with_an_empty_environment():
    result = run_python("import os, sys\nprint(os.getcwd())\nprint(sorted(os.environ))\nprint(sys.flags.isolated)")
    assert result.ok and result.limit is None
    cwd, environ, isolated = result.stdout.splitlines()
    assert "frpo-sandbox-" in cwd
    assert "PATH" not in environ and "HF_TOKEN" not in environ  # nothing of the parent's environment
    assert isolated == "1"


def test_an_error_is_a_failure_with_its_traceback():
    result = run_python("raise ValueError('boom')", limits=FAST)
    assert not result.ok and result.returncode == 1 and result.limit is None
    assert "ValueError: boom" in result.stderr


def test_network_is_refused():
    code = "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)"
    result = run_python(code, limits=FAST)
    assert not result.ok
    assert "PermissionError: sandbox: socket." in result.stderr


def test_the_network_namespace_has_only_loopback_where_the_kernel_allows_one():
    result = run_python("print(open('/proc/net/dev').read())", limits=FAST)
    assert result.network_namespace == network_namespace_available()
    if result.network_namespace:
        interfaces = [line.split(":")[0].strip() for line in result.stdout.splitlines()[2:] if ":" in line]
        assert interfaces == ["lo"]


def test_new_processes_and_native_libraries_are_refused():
    for code in (
        "import os\nos.fork()",
        "import subprocess\nsubprocess.run(['true'])",
        "import os\nos.system('true')",
        "import ctypes\nctypes.CDLL(None)",
    ):
        result = run_python(code, limits=FAST)
        assert not result.ok and "PermissionError: sandbox:" in result.stderr, code


def test_an_infinite_loop_is_killed_by_the_cpu_limit():
    start = time.monotonic()
    result = run_python("while True:\n    pass", limits=SandboxLimits(cpu_seconds=1, wall_seconds=60, preload=()))
    assert result.limit == "cpu" and not result.ok
    assert time.monotonic() - start < 30  # well before the wall limit: the CPU limit stopped it


def test_a_memory_hog_is_stopped_by_the_memory_limit():
    limits = SandboxLimits(memory_bytes=256 * 1024**2, preload=())
    result = run_python("blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 1024**2))", limits=limits)
    assert result.limit == "memory" and not result.ok
    assert "MemoryError" in result.stderr


def test_a_sleeping_program_is_killed_at_the_wall_limit():
    result = run_python("import time\ntime.sleep(60)", limits=SandboxLimits(wall_seconds=1, preload=()))
    assert result.limit == "wall" and not result.ok
    assert result.wall_seconds < 10


def test_flooding_output_is_stopped_at_the_output_limit():
    result = run_python("while True:\n    print('x' * 1000)", limits=SandboxLimits(output_bytes=100_000, preload=()))
    assert result.limit == "output" and not result.ok
    assert len(result.stdout) <= 100_000


def test_numpy_is_preloaded_before_native_loading_is_refused():
    result = run_python("import numpy as np\nprint(np.allclose([0.1 + 0.2], [0.3]))")
    assert result.ok and result.stdout.strip() == "True"


def test_run_many_keeps_the_order():
    programs = [f"print({i} * {i})" for i in range(4)]
    for workers in (1, 2):
        results = run_many(programs, limits=FAST, workers=workers)
        assert [result.stdout.strip() for result in results] == ["0", "1", "4", "9"]
