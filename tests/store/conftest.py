"""What the store's tests share: an engine on each database (`database_url`: SQLite and PostgreSQL, migrated) and a
train run to write to."""

from __future__ import annotations

import pytest

from store.db import make_engine, session_scope
from store.models import Run, RunKind
from store.specs import TrainSpec


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def run_id(engine):
    with session_scope(engine) as session:
        run = Run(kind=RunKind.train, spec=TrainSpec().model_dump())
        session.add(run)
        session.flush()
        return run.id
