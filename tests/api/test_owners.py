"""Runs and sweeps belong to the key that submitted them. A submit key sees and acts on its own only (another's is
404, never 403, so ids do not leak); an admin key on every one; a read key, an observer, sees every one and changes
none. Runs from before owners were recorded belong to no key: admin keys only."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from store.db import session_scope
from store.models import Run, RunStatus
from store.queries import authenticate, create_api_key
from tests.api.conftest import bearer

SMALLEST = {"kind": "train", "method": "frpo"}
SWEEP = {"name": "lambdas", "base": SMALLEST, "grid": {"lamb": [0.5, 1.0]}}


@pytest.fixture
def other(engine) -> str:
    """A second submit key."""
    with session_scope(engine) as session:
        return create_api_key(session, "test-submit-2", "submit")


@pytest.fixture
def api(app, keys, other):
    """One client; each call names its key."""
    with TestClient(app) as client:
        yield client


def submit(api, key: str, body=SMALLEST) -> dict:
    response = api.post("/api/v1/jobs", json=body, headers=bearer(key))
    assert response.status_code == 202, response.text
    return response.json()


def key_id(engine, key: str) -> int:
    with session_scope(engine) as session:
        return authenticate(session, key).id


def finish(engine, job_id: str, status: RunStatus = RunStatus.failed) -> None:
    with session_scope(engine) as session:
        session.execute(update(Run).where(Run.id == uuid.UUID(job_id)).values(status=status))


def test_a_job_records_the_key_that_submitted_it(api, engine, keys, other):
    mine, theirs = submit(api, keys["submit"]), submit(api, other)
    assert mine["owner_key_id"] == key_id(engine, keys["submit"])
    assert theirs["owner_key_id"] == key_id(engine, other) != mine["owner_key_id"]


def test_a_submit_key_lists_only_its_own_jobs(api, keys, other):
    mine = submit(api, keys["submit"])
    submit(api, other)
    page = api.get("/api/v1/jobs", headers=bearer(keys["submit"])).json()
    assert page["total"] == 1 and [j["id"] for j in page["items"]] == [mine["id"]]


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/jobs/{id}"),
        ("get", "/api/v1/runs/{id}/metrics"),
        ("get", "/api/v1/runs/{id}/keys"),
        ("get", "/api/v1/runs/{id}/events"),
        ("get", "/api/v1/runs/{id}/artifacts"),
        ("get", "/api/v1/runs/{id}/samples"),
        ("get", "/api/v1/runs/{id}/samples/steps"),
        ("post", "/api/v1/jobs/{id}/cancel"),
        ("post", "/api/v1/jobs/{id}/retry"),
    ],
)
def test_another_keys_job_is_not_found_exactly_like_a_missing_one(api, engine, keys, other, method, path):
    theirs = submit(api, other)
    finish(engine, theirs["id"])  # retryable, so only ownership can refuse it
    missing_id = str(uuid.uuid4())
    refused = getattr(api, method)(path.format(id=theirs["id"]), headers=bearer(keys["submit"]))
    missing = getattr(api, method)(path.format(id=missing_id), headers=bearer(keys["submit"]))
    assert refused.status_code == missing.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"
    assert refused.json()["error"]["message"] == missing.json()["error"]["message"].replace(missing_id, theirs["id"])
    assert api.get(f"/api/v1/jobs/{theirs['id']}", headers=bearer(other)).json()["status"] == "failed"  # untouched


def test_a_submit_key_cancels_and_retries_its_own_jobs(api, engine, keys):
    mine = submit(api, keys["submit"])
    assert api.post(f"/api/v1/jobs/{mine['id']}/cancel", headers=bearer(keys["submit"])).status_code == 200
    retried = api.post(f"/api/v1/jobs/{mine['id']}/retry", headers=bearer(keys["submit"]))
    assert retried.status_code == 202 and retried.json()["owner_key_id"] == mine["owner_key_id"]


def test_an_admin_key_sees_cancels_and_retries_every_job_and_a_retry_keeps_its_owner(api, engine, keys, other):
    theirs = submit(api, other)
    submit(api, keys["submit"])
    admin = bearer(keys["admin"])
    assert api.get("/api/v1/jobs", headers=admin).json()["total"] == 2
    assert api.post(f"/api/v1/jobs/{theirs['id']}/cancel", headers=admin).json()["status"] == "cancelled"
    retried = api.post(f"/api/v1/jobs/{theirs['id']}/retry", headers=admin).json()
    assert retried["owner_key_id"] == theirs["owner_key_id"]  # still the submitter's job: they see it
    assert api.get(f"/api/v1/jobs/{retried['id']}", headers=bearer(other)).status_code == 200


def test_a_read_key_sees_every_job_and_changes_none(api, keys, other):
    theirs, mine = submit(api, other), submit(api, keys["submit"])
    read = bearer(keys["read"])
    assert {j["id"] for j in api.get("/api/v1/jobs", headers=read).json()["items"]} == {theirs["id"], mine["id"]}
    assert api.get(f"/api/v1/runs/{theirs['id']}/events", headers=read).status_code == 200
    assert api.post(f"/api/v1/jobs/{theirs['id']}/cancel", headers=read).status_code == 403


def test_a_job_without_an_owner_is_for_admin_keys_only(api, engine, keys):
    """What the migration leaves on runs stored before owners were recorded."""
    job = submit(api, keys["submit"])
    with session_scope(engine) as session:
        session.execute(update(Run).where(Run.id == uuid.UUID(job["id"])).values(owner_key_id=None))
    assert api.get(f"/api/v1/jobs/{job['id']}", headers=bearer(keys["submit"])).status_code == 404
    assert api.post(f"/api/v1/jobs/{job['id']}/cancel", headers=bearer(keys["submit"])).status_code == 404
    assert api.post(f"/api/v1/jobs/{job['id']}/cancel", headers=bearer(keys["admin"])).status_code == 200


def test_a_job_cannot_start_from_another_keys_run(api, engine, keys, other):
    theirs = submit(api, other)
    finish(engine, theirs["id"], RunStatus.succeeded)
    response = api.post(
        "/api/v1/jobs", json={"kind": "finetune", "parent_id": theirs["id"]}, headers=bearer(keys["submit"])
    )
    assert response.status_code == 422
    detail = response.json()["error"]["fields"][0]
    assert detail["field"] == "parent_id" and f"there is no run {theirs['id']}" in detail["message"]


def test_sweeps_and_their_jobs_belong_to_the_submitting_key(api, engine, keys, other):
    response = api.post("/api/v1/sweeps", json=SWEEP, headers=bearer(other))
    assert response.status_code == 202, response.text
    sweep = response.json()
    owner = key_id(engine, other)
    assert sweep["owner_key_id"] == owner and {j["owner_key_id"] for j in sweep["jobs"]} == {owner}
    assert api.get(f"/api/v1/sweeps/{sweep['id']}", headers=bearer(keys["submit"])).status_code == 404
    assert api.get("/api/v1/sweeps", headers=bearer(keys["submit"])).json()["total"] == 0
    assert api.get("/api/v1/sweeps", headers=bearer(other)).json()["total"] == 1
    assert api.get(f"/api/v1/sweeps/{sweep['id']}", headers=bearer(keys["admin"])).status_code == 200
    assert api.get(f"/api/v1/jobs?sweep_id={sweep['id']}", headers=bearer(keys["submit"])).json()["total"] == 0
