"""Keys, scopes, liveness and readiness, and the OpenAPI schema the dashboard builds its forms from."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from store.db import make_engine, session_scope
from store.queries import revoke_api_key
from tests.api.conftest import bearer

SMALLEST = {"kind": "train", "method": "frpo"}


def test_healthz_needs_no_key_and_no_database(settings):
    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")  # nothing listens on port 1
    app = create_app(settings=settings, engine=dead, enqueue=lambda run_id, queue: None, broker_check=lambda: None)
    with TestClient(app) as client:
        response = client.get("/api/v1/healthz")
        assert response.status_code == 200 and response.json()["status"] == "ok"
        not_ready = client.get("/api/v1/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["broker"] == "ok"
    assert [f["field"] for f in not_ready.json()["error"]["fields"]] == ["database"]


def test_readyz_ok(app):
    with TestClient(app) as client:
        response = client.get("/api/v1/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_503_names_the_broker_when_its_port_is_closed(settings, engine):
    settings = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    app = create_app(settings=settings, engine=engine, enqueue=lambda run_id, queue: None)  # the real kombu check
    with TestClient(app) as client:
        started = time.monotonic()
        response = client.get("/api/v1/readyz")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("failed")
    assert body["error"]["code"] == "not_ready"
    assert [f["field"] for f in body["error"]["fields"]] == ["broker"]
    assert elapsed < 10


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer frpo_000000000000_wrongsecret"},
    ],
    ids=["missing", "malformed", "not-bearer", "unknown"],
)
def test_missing_or_bad_key_is_401_json(app, keys, headers):
    with TestClient(app) as client:
        response = client.get("/api/v1/jobs", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_right_prefix_wrong_secret_is_401(app, keys):
    _, prefix, secret = keys["read"].split("_", 2)
    with TestClient(app) as client:
        response = client.get("/api/v1/jobs", headers=bearer(f"frpo_{prefix}_{secret[:-1]}x"))
    assert response.status_code == 401


def test_revoked_key_is_401(app, engine, keys):
    with session_scope(engine) as session:
        assert revoke_api_key(session, keys["read"].split("_")[1])
    with TestClient(app) as client:
        assert client.get("/api/v1/jobs", headers=bearer(keys["read"])).status_code == 401


def test_scopes_read_lt_submit_lt_admin(app, keys, enqueued):
    with TestClient(app) as client:
        assert client.get("/api/v1/jobs", headers=bearer(keys["read"])).status_code == 200
        denied = client.post("/api/v1/jobs", json=SMALLEST, headers=bearer(keys["read"]))
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "forbidden"
        assert "submit" in denied.json()["error"]["message"]
        assert client.post("/api/v1/jobs", json=SMALLEST, headers=bearer(keys["submit"])).status_code == 202
        assert client.post("/api/v1/jobs", json=SMALLEST, headers=bearer(keys["admin"])).status_code == 202
        assert client.get("/api/v1/jobs", headers=bearer(keys["admin"])).json()["total"] == 2
    assert len(enqueued.calls) == 2


def test_unknown_route_is_json_error(client):
    response = client.get("/api/v1/nowhere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_openapi_carries_the_train_spec(client):
    schema = client.get("/api/v1/openapi.json").json()
    train = schema["components"]["schemas"]["TrainSpec"]
    assert {"method", "lamb", "num_generations", "per_device_train_batch_size"} <= set(train["properties"])
    assert train["properties"]["lamb"]["exclusiveMinimum"] == 0
    assert "/api/v1/jobs" in schema["paths"] and "/api/v1/sweeps" in schema["paths"]
    body = schema["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    kinds = {ref["$ref"].rsplit("/", 1)[-1] for ref in body["oneOf"]}
    assert kinds == {"TrainSpec", "FinetuneSpec", "EvaluateSpec", "PipelineSpec"}
