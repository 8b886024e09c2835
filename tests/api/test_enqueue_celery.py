"""The real path: the API enqueues through workers.celery_app.enqueue onto a Redis broker's `cpu` queue."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from fastapi.testclient import TestClient

import workers.celery_app as celery_app
from api.main import create_app
from testkit.service import redis_url

REDIS_URL = redis_url(15)

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(monkeypatch):
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # the integration tests need the Redis on 127.0.0.1:6379
    client.delete("cpu", "gpu")
    monkeypatch.setattr(celery_app, "app", celery_app.make_app(REDIS_URL))
    yield client
    client.delete("cpu", "gpu")
    client.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_submission_lands_on_the_cpu_queue(settings, engine, keys, broker):
    settings = settings.model_copy(update={"broker_url": REDIS_URL})
    app = create_app(settings=settings, engine=engine, enqueue=celery_app.enqueue)  # the real enqueue and check
    with TestClient(app, headers={"Authorization": f"Bearer {keys['submit']}"}) as client:
        assert client.get("/api/v1/readyz").status_code == 200
        job = client.post("/api/v1/jobs", json={"kind": "train", "method": "frpo"}).json()
    assert broker.llen("cpu") == 1 and broker.llen("gpu") == 0
    message = json.loads(broker.lindex("cpu", 0))
    assert message["headers"]["task"] == celery_app.TASK_RUN_JOB
    assert message["headers"]["argsrepr"] == repr([job["id"]])
    assert uuid.UUID(job["id"])
