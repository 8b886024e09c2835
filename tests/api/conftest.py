"""An app per test on a migrated database (SQLite and PostgreSQL), a recording enqueue, and keys of each scope."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from store.db import make_engine, session_scope
from store.queries import create_api_key
from store.settings import Settings


def pytest_collection_modifyitems(items):
    """The PostgreSQL half of every parametrized API test is an integration test."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database_url") == "postgres":
            item.add_marker(pytest.mark.integration)


class Recorder:
    """Stands in for workers.celery_app.enqueue; `fail=True` makes it raise like an unreachable broker."""

    def __init__(self) -> None:
        self.calls: list[tuple[uuid.UUID, str]] = []
        self.fail = False

    def __call__(self, run_id: uuid.UUID, queue: str) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.calls.append((run_id, queue))


@pytest.fixture
def settings(tmp_path, database_url):
    models = tmp_path / "models"
    models.mkdir()
    return Settings(data_dir=tmp_path, database_url=database_url, model_roots=[models], broker_url="memory://")


@pytest.fixture
def engine(settings):
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def enqueued():
    return Recorder()


@pytest.fixture
def app(settings, engine, enqueued):
    return create_app(settings=settings, engine=engine, enqueue=enqueued, broker_check=lambda: None)


@pytest.fixture
def keys(engine):
    with session_scope(engine) as session:
        return {scope: create_api_key(session, f"test-{scope}", scope) for scope in ("read", "submit", "admin")}


@pytest.fixture
def client(app, keys):
    """Authenticated with the submit key; pass headers=… to use another."""
    with TestClient(app, headers={"Authorization": f"Bearer {keys['submit']}"}) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
