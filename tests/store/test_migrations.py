"""The same migrations create the models' schema on PostgreSQL and SQLite, and downgrade cleanly."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from store.migrate import downgrade, upgrade
from store.models import Base, utcnow

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_upgrade_matches_models_and_downgrade_empties(request, kind):
    url = request.getfixturevalue(f"{kind}_url")
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    assert set(inspect(engine).get_table_names()) >= {"runs", "metric_points", "events", "artifacts", "api_keys"}
    downgrade(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(url)  # and back up again
    assert "runs" in inspect(engine).get_table_names()
    engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_runs_stored_before_owners_get_no_owner(request, kind):
    url = request.getfixturevalue(f"{kind}_url")
    upgrade(url, "0001")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (id, kind, status, spec, tags, queue, progress, attempts, cancel_requested,"
                " created_at, updated_at) VALUES (:id, 'train', 'failed', '{}', '{}', 'cpu', 0, 0, false, :now, :now)"
            ),
            {"id": uuid.uuid4().hex if kind == "sqlite" else str(uuid.uuid4()), "now": utcnow()},
        )
    upgrade(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT owner_key_id FROM runs")).all() == [(None,)]
    engine.dispose()
