"""The CLI's API commands, run in-process (typer's runner) against the real API on uvicorn over seeded databases."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli.main import app
from testkit.dashboard import seed, seed_frontier, seed_math, serve_api

Frpo = Callable[..., Result]


def _runner(url: str, key: str) -> Frpo:
    def frpo(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env={"FRPO_API_URL": url, "FRPO_API_KEY": key})

    return frpo


@pytest.fixture(scope="module")
def seeded_api(tmp_path_factory):
    """12 fine-tuning runs with their RL parents in one sweep, an evaluation and a failed run (read and submit keys)."""
    folder = tmp_path_factory.mktemp("cli-api")
    seeded = seed(f"sqlite:///{folder / 'frpo.db'}", with_failed=True)
    with serve_api(seeded.database_url, folder) as url:
        yield url, seeded


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
def empty_api(tmp_path):
    """Keys and no runs: what the submit tests write to (jobs are recorded as enqueued; no worker runs them)."""
    seeded = seed(f"sqlite:///{tmp_path / 'frpo.db'}", runs=False)
    with serve_api(seeded.database_url, tmp_path) as url:
        yield url, seeded


@pytest.fixture
def runner() -> Callable[[str, str], Frpo]:
    """`runner(url, key)("jobs", "--json")`: the `frpo` CLI with FRPO_API_URL and FRPO_API_KEY set."""
    return _runner
