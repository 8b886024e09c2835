"""A run's metrics (downsampled server-side), metric keys, events and artifacts."""

from __future__ import annotations

import math
import uuid

import numpy as np
from sqlalchemy import insert

from store.db import session_scope
from store.models import Artifact, Event, MetricPoint

SMALLEST = {"kind": "train", "method": "frpo"}


def add_series(engine, run_id: str, key: str, values) -> None:
    rows = [{"run_id": uuid.UUID(run_id), "key": key, "step": i, "value": float(v)} for i, v in enumerate(values)]
    with session_scope(engine) as session:
        session.execute(insert(MetricPoint), rows)


def test_metrics_downsampling_keeps_global_extremes(client, engine):
    run_id = client.post("/api/v1/jobs", json=SMALLEST).json()["id"]
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(size=100_000))
    values[31_337] = values.max() + 50.0  # a one-point spike each way: a naive stride would miss them
    values[77_777] = values.min() - 50.0
    add_series(engine, run_id, "reward", values)
    add_series(engine, run_id, "loss", [3.0, 2.0, float("inf"), 1.0])  # SQLite cannot store NaN

    response = client.get(f"/api/v1/runs/{run_id}/metrics", params={"keys": "reward", "max_points": 2000})
    assert response.status_code == 200
    body = response.json()
    assert body["run_id"] == run_id and set(body["series"]) == {"reward"}
    series = body["series"]["reward"]
    assert series["total_points"] == 100_000
    assert 100 < len(series["steps"]) <= 2000 and len(series["steps"]) == len(series["values"])
    assert series["steps"] == sorted(series["steps"])
    assert max(series["values"]) == values.max() and min(series["values"]) == values.min()
    assert 31_337 in series["steps"] and 77_777 in series["steps"]
    assert series["steps"][0] == 0 and series["steps"][-1] == 99_999

    everything = client.get(f"/api/v1/runs/{run_id}/metrics", params={"max_points": 10}).json()["series"]
    assert set(everything) == {"reward", "loss"} and len(everything["reward"]["steps"]) <= 10
    assert everything["loss"] == {"steps": [0, 1, 2, 3], "values": [3.0, 2.0, None, 1.0], "total_points": 4}
    assert not any(v is not None and math.isnan(v) for v in everything["loss"]["values"])

    assert client.get(f"/api/v1/runs/{run_id}/keys").json() == {"run_id": run_id, "keys": ["loss", "reward"]}
    unknown = client.get(f"/api/v1/runs/{run_id}/metrics", params={"keys": "nope"}).json()["series"]["nope"]
    assert unknown == {"steps": [], "values": [], "total_points": 0}
    assert client.get(f"/api/v1/runs/{run_id}/metrics", params={"max_points": 1}).status_code == 422


def test_events_paginate_by_id(client, engine):
    run_id = client.post("/api/v1/jobs", json=SMALLEST).json()["id"]
    with session_scope(engine) as session:
        for i in range(5):
            session.add(Event(run_id=uuid.UUID(run_id), message=f"step {i}", data={"i": i}))
    first = client.get(f"/api/v1/runs/{run_id}/events", params={"limit": 3}).json()
    assert [e["message"] for e in first["items"]] == ["step 0", "step 1", "step 2"]
    rest = client.get(f"/api/v1/runs/{run_id}/events", params={"after_id": first["next_after_id"]}).json()
    assert [e["data"]["i"] for e in rest["items"]] == [3, 4]
    empty = client.get(f"/api/v1/runs/{run_id}/events", params={"after_id": rest["next_after_id"]}).json()
    assert empty["items"] == [] and empty["next_after_id"] == rest["next_after_id"]


def test_artifacts_list(client, engine):
    run_id = client.post("/api/v1/jobs", json=SMALLEST).json()["id"]
    assert client.get(f"/api/v1/runs/{run_id}/artifacts").json() == {"run_id": run_id, "items": []}
    with session_scope(engine) as session:
        session.add(
            Artifact(
                run_id=uuid.UUID(run_id),
                kind="checkpoint",
                path="runs/x/checkpoint-10",
                size_bytes=42,
                sha256="a" * 64,
                step=10,
            )
        )
    [artifact] = client.get(f"/api/v1/runs/{run_id}/artifacts").json()["items"]
    assert artifact["kind"] == "checkpoint" and artifact["step"] == 10 and artifact["size_bytes"] == 42


def test_read_key_reads_runs(client, keys):
    run_id = client.post("/api/v1/jobs", json=SMALLEST).json()["id"]
    headers = {"Authorization": f"Bearer {keys['read']}"}
    for suffix in ("metrics", "keys", "events", "artifacts"):
        assert client.get(f"/api/v1/runs/{run_id}/{suffix}", headers=headers).status_code == 200
