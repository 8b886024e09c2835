"""Shared fixtures: real databases. PostgreSQL is the one on 127.0.0.1:5432 (trust auth); each test gets a fresh
database, migrated, and dropped afterwards. SQLite is a file in the test's tmp_path."""

from __future__ import annotations

import os

import pytest

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
