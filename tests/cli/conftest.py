"""The CLI's API commands, run in-process (typer's runner) against the real API on uvicorn over seeded databases
(`seeded_api` and `empty_api` are tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli.main import app
from testkit.dashboard import seed_frontier, seed_math, serve_api

Frpo = Callable[..., Result]


def _runner(url: str, key: str) -> Frpo:
    def frpo(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env={"FRPO_API_URL": url, "FRPO_API_KEY": key})

    return frpo


@pytest.fixture(scope="module")
def frontier_api(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-frontier")
    seeded = seed_frontier(f"sqlite:///{folder / 'frpo.db'}")
    with serve_api(seeded.database_url, folder) as url:
        yield url, seeded


@pytest.fixture(scope="module")
def math_api(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-math")
    seeded = seed_math(f"sqlite:///{folder / 'frpo.db'}")
    with serve_api(seeded.database_url, folder) as url:
        yield url, seeded


@pytest.fixture
def runner() -> Callable[[str, str], Frpo]:
    """`runner(url, key)("jobs", "--json")`: the `frpo` CLI with FRPO_API_URL and FRPO_API_KEY set."""
    return _runner
