"""The CLI's API commands, run in-process (typer's runner) against the real API on uvicorn over seeded databases
(`runner`, `seeded_api` and `empty_api` are tests/conftest.py's)."""

from __future__ import annotations

import pytest

from testkit.dashboard import seed_frontier, seed_math, serve_api


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
