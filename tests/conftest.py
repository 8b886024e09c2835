"""Shared fixtures: real databases. PostgreSQL is the one on 127.0.0.1:5432 (trust auth); each test gets a fresh
database, migrated, and dropped afterwards. SQLite is a file in the test's tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from click.testing import Result

from store.migrate import upgrade
from testkit.service import fresh_postgres_database

POSTGRES_ADMIN_URL = os.environ.get("FRPO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def postgres_url():
    """URL of a new, empty PostgreSQL database (not migrated)."""
    with fresh_postgres_database(POSTGRES_ADMIN_URL, "frpo_test") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'frpo.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    """A migrated database of each kind."""
    url = request.getfixturevalue(f"{request.param}_url")
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def seeded_api(tmp_path_factory):
    """The real API (uvicorn in a thread) over the dashboard's full seed: 12 fine-tuning runs with their RL parents in
    one sweep, an evaluation and a failed run, with read and submit keys. Yields (url, seeded)."""
    from testkit.dashboard import seed, serve_api

    folder = tmp_path_factory.mktemp("seeded-api")
    seeded = seed(f"sqlite:///{folder / 'frpo.db'}", with_failed=True)
    with serve_api(seeded.database_url, folder) as url:
        yield url, seeded


@pytest.fixture
def empty_api(tmp_path):
    """The real API over keys and no runs: what submit tests write to (jobs are recorded as enqueued; no worker runs
    them). Yields (url, seeded)."""
    from testkit.dashboard import seed, serve_api

    seeded = seed(f"sqlite:///{tmp_path / 'frpo.db'}", runs=False)
    with serve_api(seeded.database_url, tmp_path) as url:
        yield url, seeded


Frpo = Callable[..., Result]


@pytest.fixture
def runner() -> Callable[[str, str], Frpo]:
    """`runner(url, key)("jobs", "--json")`: the `frpo` CLI, run in-process, with FRPO_API_URL and FRPO_API_KEY set."""
    from typer.testing import CliRunner

    from cli.main import app

    def bound(url: str, key: str) -> Frpo:
        def frpo(*args: str) -> Result:
            return CliRunner().invoke(app, list(args), env={"FRPO_API_URL": url, "FRPO_API_KEY": key})

        return frpo

    return bound
