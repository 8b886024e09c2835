"""The same migrations create the models' schema on PostgreSQL and SQLite, and downgrade cleanly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from store.migrate import downgrade, upgrade
from store.models import Base

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
