"""Fixtures for the worker tests."""

from __future__ import annotations

import pytest

from store.db import make_engine
from store.migrate import upgrade
from store.settings import Settings


@pytest.fixture
def sqlite_engine(sqlite_url):
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path, sqlite_url):
    """The embedded store with a short lease, so recovery paths run in seconds."""
    return Settings(data_dir=tmp_path, database_url=sqlite_url, lease_seconds=10, heartbeat_seconds=1)
