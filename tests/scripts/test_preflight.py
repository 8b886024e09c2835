"""The test command says up front what it needs and stops naming what is missing, before it installs anything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.service import free_port

ROOT = Path(__file__).resolve().parents[2]


def preflight(env: dict[str, str], *, as_user: int | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "scripts" / "preflight.py")]
    if as_user is not None:  # a real unprivileged user, as a person without root runs it
        command = [shutil.which("setpriv"), f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups", *command]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_everything_here_passes():
    result = preflight({})
    assert result.returncode == 0, result.stderr


def test_a_missing_database_and_broker_are_named_with_how_to_get_them():
    closed = free_port()
    result = preflight(
        {
            "FRPO_TEST_POSTGRES_URL": f"postgresql+psycopg://postgres@127.0.0.1:{closed}/postgres",
            "FRPO_TEST_REDIS_URL": f"redis://127.0.0.1:{closed}",
        }
    )
    assert result.returncode == 1
    assert (
        f"PostgreSQL does not answer on 127.0.0.1:{closed}" in result.stderr
        and "FRPO_TEST_POSTGRES_URL" in result.stderr
    )
    assert f"Redis does not answer PING on 127.0.0.1:{closed}" in result.stderr and "redis-server" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to become another user")
def test_without_chromium_a_user_who_cannot_install_it_is_told_how():
    result = preflight({"FRPO_TEST_CHROMIUM": "/nonexistent/chromium"}, as_user=65534)
    assert result.returncode == 1
    assert "No Chromium at /nonexistent/chromium" in result.stderr and "sudo apt-get install chromium" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to become another user")
def test_without_docker_a_user_who_cannot_install_it_is_told_how():
    result = preflight({"PATH": "/nonexistent"}, as_user=65534)  # no docker, docker-compose or debootstrap on PATH
    assert result.returncode == 1
    assert "The compose tests need docker, docker-compose, debootstrap" in result.stderr
    assert "sudo apt-get install docker.io docker-compose debootstrap" in result.stderr


def test_root_may_go_on_without_chromium_as_the_test_command_installs_it():
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("only root with apt-get can install chromium")
    assert preflight({"FRPO_TEST_CHROMIUM": "/nonexistent/chromium"}).returncode == 0


def test_the_test_command_stops_at_the_preflight_with_its_message():
    closed = free_port()
    env = {**os.environ, "FRPO_TEST_REDIS_URL": f"redis://127.0.0.1:{closed}"}
    result = subprocess.run([str(ROOT / "scripts" / "test")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("./scripts/test cannot run yet:") and "Redis does not answer" in result.stderr
