"""Shared fixtures: real databases. PostgreSQL is the one on 127.0.0.1:5432 (trust auth); each test gets a fresh
database, migrated, and dropped afterwards. SQLite is a file in the test's tmp_path."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from store.migrate import upgrade

POSTGRES_ADMIN_URL = os.environ.get("FRPO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def postgres_url():
    """URL of a new, empty PostgreSQL database (not migrated)."""
    name = f"frpo_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'frpo.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    """A migrated database of each kind."""
    url = request.getfixturevalue(f"{request.param}_url")
    upgrade(url)
    return url
