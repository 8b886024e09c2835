"""Fixtures for the worker tests."""

from __future__ import annotations

import pytest

from store.db import make_engine
from store.migrate import upgrade


@pytest.fixture
def sqlite_engine(sqlite_url):
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()
