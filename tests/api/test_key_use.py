"""A key's last use is recorded to the minute without a write per request, and a request never holds a second
database connection (reads never write; on SQLite they never wait for a worker's write lock)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update

from store.db import session_scope
from store.models import ApiKey, utcnow
from store.queries import as_utc
from tests.api.conftest import bearer


def last_used(engine, key: str):
    with session_scope(engine) as session:
        return as_utc(session.scalar(select(ApiKey.last_used_at).where(ApiKey.prefix == key.split("_")[1])))


@pytest.fixture
def writes(engine) -> list[str]:
    """Every INSERT/UPDATE/DELETE the engine runs from now on."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_first_use_is_recorded_then_reads_write_nothing_for_a_minute(app, engine, keys, writes):
    assert last_used(engine, keys["read"]) is None
    with TestClient(app, headers=bearer(keys["read"])) as client:
        assert client.get("/api/v1/jobs").status_code == 200
        first = last_used(engine, keys["read"])
        assert first is not None and utcnow() - first < timedelta(seconds=30)
        assert len(writes) == 1 and "api_keys" in writes[0]
        for _ in range(20):
            assert client.get("/api/v1/jobs?limit=5").status_code == 200
    assert len(writes) == 1
    assert last_used(engine, keys["read"]) == first


def test_a_use_older_than_a_minute_is_written_again_once(app, engine, keys, writes):
    with session_scope(engine) as session:
        session.execute(update(ApiKey).values(last_used_at=utcnow() - timedelta(minutes=2)))
    writes.clear()
    with TestClient(app, headers=bearer(keys["read"])) as client:
        for _ in range(5):
            assert client.get("/api/v1/jobs").status_code == 200
    assert len(writes) == 1
    assert utcnow() - last_used(engine, keys["read"]) < timedelta(seconds=30)


def test_a_request_holds_one_connection_at_a_time(app, engine, keys, enqueued):
    """Checked out at once, counted across a read, a keyed POST, and a POST whose enqueue fails (its warning event
    is written in the request's own session)."""
    held, most = 0, 0

    def checkout(*_args) -> None:
        nonlocal held, most
        held += 1
        most = max(most, held)

    def checkin(*_args) -> None:
        nonlocal held
        held -= 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    try:
        with TestClient(app, headers=bearer(keys["submit"])) as client:
            assert client.get("/api/v1/jobs").status_code == 200
            assert client.post("/api/v1/jobs", json={"method": "frpo"}, headers={"Idempotency-Key": "a"}).is_success
            enqueued.fail = True
            job = client.post("/api/v1/jobs", json={"method": "grpo"}).json()
            assert "enqueue failed" in client.get(f"/api/v1/runs/{job['id']}/events").json()["items"][0]["message"]
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)
    assert most == 1
