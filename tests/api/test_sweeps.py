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


def test_list_sweeps_newest_first_with_job_counts(client, keys):
    assert client.get("/api/v1/sweeps").json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    first = client.post("/api/v1/sweeps", json=SWEEP).json()
    second = client.post("/api/v1/sweeps", json={**SWEEP, "name": "seeds", "grid": {"seed": [0, 1, 2]}}).json()
    listed = client.get("/api/v1/sweeps", headers={"Authorization": f"Bearer {keys['read']}"})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 2 and [s["id"] for s in body["items"]] == [second["id"], first["id"]]
    assert [s["job_count"] for s in body["items"]] == [len(second["job_ids"]), len(first["job_ids"])]
    assert (
        body["items"][1]["grid"] == {"lamb": [0.5, 2.0], "seed": [0, 1]} and body["items"][1]["name"] == "lambda-grid"
    )
    paged = client.get("/api/v1/sweeps", params={"limit": 1, "offset": 1}).json()
    assert paged["total"] == 2 and [s["id"] for s in paged["items"]] == [first["id"]]
    assert client.get("/api/v1/sweeps", params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/sweeps", headers={"Authorization": "Bearer nope"}).status_code == 401


def finished_warm_start(client, engine) -> str:
    """A succeeded fine-tuning run of a base model with a final model: what a warm start leaves behind."""
    from store.models import Artifact, RunStatus

    warm = client.post("/api/v1/jobs", json={"kind": "finetune", "preset": "toy-warm-start"}).json()
    with session_scope(engine) as session:
        run = session.get(Run, uuid.UUID(warm["id"]))
        run.status = RunStatus.succeeded
        session.add(Artifact(run_id=run.id, kind="model", path="/m", size_bytes=1, sha256="0" * 64))
    return warm["id"]


def test_sweep_of_pipelines_from_a_warm_start(client, engine, enqueued):
    warm = finished_warm_start(client, engine)
    enqueued.calls.clear()
    body = {
        "name": "toy",
        "base": {
            "kind": "pipeline",
            "train": {"preset": "toy-safety", "parent_id": warm, "max_steps": 4},
            "finetune": {"preset": "toy-benign-sft", "max_steps": 3},
        },
        "grid": {"lamb": [0.2, 0.5], "seed": [0, 1]},
    }
    response = client.post("/api/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    sweep = response.json()
    jobs = {job["id"]: job for job in sweep["jobs"]}
    # 6 pipelines (FRPO 2 λ × 2 seeds, GRPO × 2 seeds) of train → finetune → evaluate, all in the sweep
    assert len(jobs) == 18 and all(job["sweep_id"] == sweep["id"] for job in jobs.values())
    trains = [job for job in jobs.values() if job["kind"] == "train"]
    assert all(job["parent_id"] == warm for job in trains)  # RL starts from the warm start: its reference model
    assert {uuid.UUID(job["id"]) for job in trains} == {run_id for run_id, _ in enqueued.calls}  # first stages only
    for finetune in (job for job in jobs.values() if job["kind"] == "finetune"):
        rl = jobs[finetune["parent_id"]]
        assert finetune["tags"]["method"] == rl["tags"]["method"] and finetune["tags"]["seed"] == rl["tags"]["seed"]
        assert finetune["spec"]["seed"] == rl["spec"]["seed"] and finetune["spec"]["max_steps"] == 3
        assert finetune["tags"]["pipeline"] == rl["id"] and finetune["tags"]["sweep"] == "toy"
    assert sum(job["kind"] == "evaluate" for job in jobs.values()) == 6


def test_sweep_from_an_unfinished_run_is_refused_whole(client, engine, enqueued):
    queued = client.post("/api/v1/jobs", json={"method": "frpo"}).json()
    before = count(engine, Run)
    body = {"name": "s", "base": {"parent_id": queued["id"]}, "grid": {"lamb": [0.5]}}
    response = client.post("/api/v1/sweeps", json=body)
    assert response.status_code == 422
    [field] = response.json()["error"]["fields"]
    assert field["field"] == "parent_id" and "must have succeeded" in field["message"]
    assert count(engine, Run) == before and count(engine, Sweep) == 0


def test_pipeline_base_errors_name_the_nested_field(client, engine):
    body = {"name": "s", "base": {"kind": "pipeline", "train": {"lamb": -1}}, "grid": {"seed": [0]}}
    response = client.post("/api/v1/sweeps", json=body)
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["error"]["fields"]] == ["base.train.lamb"]


def test_grpo_budget_sweep_links_every_budget_to_its_downstream_jobs(client, engine, enqueued):
    warm = finished_warm_start(client, engine)
    body = {"preset": "toy-frontier", "base": {"train": {"parent_id": warm}}, "grid": {"lamb": [0.5], "seed": [0, 1]}}
    response = client.post("/api/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    sweep = response.json()
    assert sweep["grid"]["grpo_budgets"] == {"checkpoints": [15, 30], "beta": [0.05, 0.0]}
    jobs = {job["id"]: job for job in sweep["jobs"]}
    trains = [job for job in jobs.values() if job["kind"] == "train"]
    grpo = sorted((job["tags"]["beta"], job["tags"]["seed"]) for job in trains if job["tags"]["method"] == "grpo")
    assert grpo == [(beta, seed) for beta in (0.0, 0.05) for seed in (0, 1)]  # one run per β × seed, to 30 steps
    children: dict[str, list[dict]] = {}
    for job in jobs.values():
        if job["kind"] == "finetune":
            children.setdefault(job["parent_id"], []).append(job)
    for train in trains:  # every point is followed by the same fine-tuning; GRPO's from its checkpoint at each step
        steps = sorted(job["spec"]["parent_step"] or 0 for job in children[train["id"]])
        assert steps == ([15, 30] if train["tags"]["method"] == "grpo" else [0])
        for finetune in children[train["id"]]:
            assert finetune["tags"]["beta"] == train["tags"]["beta"]  # inherited: charts group by budget
            assert finetune["spec"]["preset"] == "toy-benign-sft" and finetune["spec"]["seed"] == train["spec"]["seed"]
