"""Sweeps: one row and one linked job per grid point, in one transaction, each enqueued after the commit."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from store.db import session_scope
from store.models import Run, Sweep

SWEEP = {"name": "lambda-grid", "base": {"max_steps": 5}, "grid": {"lamb": [0.5, 2.0], "seed": [0, 1]}}


def count(engine, model) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_sweep_creates_linked_runs(client, engine, enqueued):
    response = client.post("/api/v1/sweeps", json=SWEEP)
    assert response.status_code == 202, response.text
    sweep = response.json()
    # FRPO at 2 λ × 2 seeds, plus GRPO once per seed
    assert len(sweep["job_ids"]) == 6 and len(sweep["jobs"]) == 6
    assert sweep["name"] == "lambda-grid" and sweep["grid"] == {"lamb": [0.5, 2.0], "seed": [0, 1]}
    assert sweep["base_spec"]["max_steps"] == 5
    assert {uuid.UUID(i) for i in sweep["job_ids"]} == {run_id for run_id, _ in enqueued.calls}
    frpo = sorted((j["tags"]["lamb"], j["tags"]["seed"]) for j in sweep["jobs"] if j["tags"]["method"] == "frpo")
    assert frpo == [(0.5, 0), (0.5, 1), (2.0, 0), (2.0, 1)]
    assert sorted(j["tags"]["seed"] for j in sweep["jobs"] if j["tags"]["method"] == "grpo") == [0, 1]
    for job in sweep["jobs"]:
        assert job["sweep_id"] == sweep["id"] and job["tags"]["sweep"] == "lambda-grid"
        assert job["status"] == "queued" and job["spec"]["max_steps"] == 5

    fetched = client.get(f"/api/v1/sweeps/{sweep['id']}").json()
    assert sorted(fetched["job_ids"]) == sorted(sweep["job_ids"])
    listed = client.get("/api/v1/jobs", params={"sweep_id": sweep["id"], "method": "grpo"}).json()
    assert listed["total"] == 2


def test_bad_sweep_writes_nothing(client, engine, enqueued):
    bad = [
        ({**SWEEP, "grid": {"seed": []}}, "grid.seed"),
        ({**SWEEP, "grid": {"lr": [1]}}, "grid.lr"),
        ({**SWEEP, "base": {"lamb": -1}}, "base.lamb"),
        ({**SWEEP, "base": {"colour": "red"}}, "base.colour"),
        ({**SWEEP, "base": {"per_device_train_batch_size": 6}}, "base.per_device_train_batch_size"),
        ({**SWEEP, "base": {"model": "/nowhere/model"}}, "base.model"),
        ({**SWEEP, "grid": {"lamb": [0.5, -1.0]}}, "grid.lamb.1"),
    ]
    for body, field in bad:
        response = client.post("/api/v1/sweeps", json=body)
        assert response.status_code == 422, (body, response.text)
        fields = [f["field"] for f in response.json()["error"]["fields"]]
        if field is not None:
            assert field in fields, (body, fields)
    extra = client.post("/api/v1/sweeps", json={**SWEEP, "base": {"colour": "red"}}).json()["error"]["fields"][0]
    assert "lamb" in extra["fix"] and "grid" not in extra["fix"]  # the allowed fields of the base spec
    assert count(engine, Sweep) == 0 and count(engine, Run) == 0 and enqueued.calls == []


def test_sweep_needs_submit_scope(client, keys):
    response = client.post("/api/v1/sweeps", json=SWEEP, headers={"Authorization": f"Bearer {keys['read']}"})
    assert response.status_code == 403
