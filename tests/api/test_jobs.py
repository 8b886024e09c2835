"""Submitting, listing, cancelling and retrying jobs; error shapes; nothing written when a request fails."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from store import queries
from store.db import session_scope
from store.models import Artifact, Event, IdempotencyRecord, Run, RunStatus, utcnow

SMALLEST = {"kind": "train", "method": "frpo"}


def count(engine, model=Run) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def set_status(engine, run_id: str, status: RunStatus) -> None:
    with session_scope(engine) as session:
        run = session.get(Run, uuid.UUID(run_id))
        run.status = status
        if status.finished:
            run.finished_at = utcnow()


def test_smallest_submission_is_queued_with_defaults_filled(client, engine, enqueued):
    response = client.post("/api/v1/jobs", json=SMALLEST)
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "queued" and job["kind"] == "train" and job["queue"] == "cpu"
    assert job["spec"]["model"] == "tiny" and job["spec"]["lamb"] == 1.0 and job["spec"]["num_generations"] == 8
    assert job["tags"] == {
        "method": "frpo",
        "lamb": 1.0,
        "beta": 0.0,
        "seed": 0,
        "base_model": "tiny",
        "dataset": "toy",
        "learning_rate": 0.003,
        "max_steps": 40,
        "scale_rewards": "none",
    }
    assert job["progress"] == 0.0 and job["attempts"] == 0 and job["error"] is None
    assert job["parent_id"] is None and job["sweep_id"] is None and job["started_at"] is None
    assert job["created_at"].endswith(("Z", "+00:00"))
    assert enqueued.calls == [(uuid.UUID(job["id"]), "cpu")]
    with session_scope(engine) as session:  # committed before it was enqueued, with the spec as submitted
        run = session.get(Run, uuid.UUID(job["id"]))
        assert run.status == RunStatus.queued and run.spec == job["spec"]
    assert client.get(f"/api/v1/jobs/{job['id']}").json() == job


def test_gpu_queue_is_routed(client, enqueued):
    job = client.post("/api/v1/jobs", json={**SMALLEST, "queue": "gpu"}).json()
    assert job["queue"] == "gpu"
    assert enqueued.calls[-1] == (uuid.UUID(job["id"]), "gpu")


def test_enqueue_failure_keeps_the_run_queued_and_records_an_event(client, engine, enqueued):
    enqueued.fail = True
    response = client.post("/api/v1/jobs", json=SMALLEST)
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "queued"
    events = client.get(f"/api/v1/runs/{job_id}/events").json()["items"]
    assert len(events) == 1 and events[0]["level"] == "warning" and "enqueue failed" in events[0]["message"]
    assert "broker unreachable" in events[0]["data"]["error"]


def test_list_filters_and_pagination_newest_first(client, engine):
    ids = []
    for i, method in enumerate(["frpo", "grpo", "frpo", "grpo", "frpo"]):
        ids.append(client.post("/api/v1/jobs", json={"method": method, "seed": i}).json()["id"])
    set_status(engine, ids[0], RunStatus.failed)

    everything = client.get("/api/v1/jobs").json()
    assert everything["total"] == 5 and everything["limit"] == 50 and everything["offset"] == 0
    assert [j["id"] for j in everything["items"]] == ids[::-1]

    page = client.get("/api/v1/jobs", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 5 and [j["id"] for j in page["items"]] == ids[::-1][1:3]

    grpo = client.get("/api/v1/jobs", params={"method": "grpo"}).json()
    assert grpo["total"] == 2 and {j["id"] for j in grpo["items"]} == {ids[1], ids[3]}
    assert client.get("/api/v1/jobs", params={"status": "failed"}).json()["items"][0]["id"] == ids[0]
    assert client.get("/api/v1/jobs", params={"status": "queued", "method": "frpo"}).json()["total"] == 2
    assert client.get("/api/v1/jobs", params={"kind": "train"}).json()["total"] == 5
    assert client.get("/api/v1/jobs", params={"kind": "evaluate"}).json()["total"] == 0
    assert client.get("/api/v1/jobs", params={"sweep_id": str(uuid.uuid4())}).json()["total"] == 0


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"offset": -1}, {"status": "done"}])
def test_list_rejects_bad_query_parameters(client, params):
    response = client.get("/api/v1/jobs", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == next(iter(params))


def test_missing_job_is_404_json(client):
    missing = uuid.uuid4()
    for method, path in [
        ("get", f"/api/v1/jobs/{missing}"),
        ("post", f"/api/v1/jobs/{missing}/cancel"),
        ("post", f"/api/v1/jobs/{missing}/retry"),
        ("get", f"/api/v1/runs/{missing}/metrics"),
        ("get", f"/api/v1/runs/{missing}/keys"),
        ("get", f"/api/v1/runs/{missing}/events"),
        ("get", f"/api/v1/runs/{missing}/artifacts"),
        ("get", f"/api/v1/sweeps/{missing}"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    bad = client.get("/api/v1/jobs/not-a-uuid")
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "job_id"


def test_cancel_queued_then_finished(client, engine):
    job_id = client.post("/api/v1/jobs", json=SMALLEST).json()["id"]
    cancelled = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"] is not None
    again = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict" and "cancelled" in again.json()["error"]["message"]


def test_cancel_running_asks_the_worker(client, engine):
    job_id = client.post("/api/v1/jobs", json=SMALLEST).json()["id"]
    set_status(engine, job_id, RunStatus.running)
    response = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "running" and response.json()["cancel_requested"] is True
    with session_scope(engine) as session:
        assert session.get(Run, uuid.UUID(job_id)).cancel_requested


def test_cancel_succeeded_is_409(client, engine):
    job_id = client.post("/api/v1/jobs", json=SMALLEST).json()["id"]
    set_status(engine, job_id, RunStatus.succeeded)
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 409


def test_retry_creates_a_linked_new_run(client, engine, enqueued):
    old = client.post("/api/v1/jobs", json={**SMALLEST, "lamb": 0.5, "name": "first"}).json()
    early = client.post(f"/api/v1/jobs/{old['id']}/retry")
    assert early.status_code == 409 and "queued" in early.json()["error"]["message"]
    set_status(engine, old["id"], RunStatus.failed)
    response = client.post(f"/api/v1/jobs/{old['id']}/retry")
    assert response.status_code == 202
    new = response.json()
    assert new["id"] != old["id"] and new["status"] == "queued" and new["spec"] == old["spec"]
    assert new["tags"] == {**old["tags"], "retry_of": old["id"]}
    assert new["parent_id"] == old["parent_id"] and new["sweep_id"] == old["sweep_id"] and new["name"] == "first"
    assert enqueued.calls[-1] == (uuid.UUID(new["id"]), "cpu")
    assert client.get(f"/api/v1/jobs/{old['id']}").json()["status"] == "failed"


BAD_SPECS = [
    ({**SMALLEST, "lr": 0.1}, "lr", "extra_forbidden", "allowed fields are"),
    ({**SMALLEST, "lamb": 0}, "lamb", "greater than 0", "greater than 0"),
    ({**SMALLEST, "lamb": -1.5}, "lamb", "greater than 0", "greater than 0"),
    ({**SMALLEST, "method": "ppo"}, "method", "'frpo', 'grpo', 'dr_grpo'", "use one of 'frpo', 'grpo', 'dr_grpo'"),
    (
        {**SMALLEST, "per_device_train_batch_size": 12, "num_generations": 8},
        "per_device_train_batch_size",
        "multiple of num_generations",
        "",
    ),
    ({**SMALLEST, "model": "/etc/secret-model"}, "model", "model root", "tiny"),
    ({**SMALLEST, "trust_remote_code": True}, "trust_remote_code", "does not allow", "FRPO_ALLOW_TRUST_REMOTE_CODE"),
    ({**SMALLEST, "trl": {"lamb": 2}}, "trl", "may not set", ""),
]


@pytest.mark.parametrize(
    ("body", "field", "message", "fix"), BAD_SPECS, ids=[b[1] + str(i) for i, b in enumerate(BAD_SPECS)]
)
def test_bad_spec_is_422_naming_the_field_and_writes_nothing(client, engine, enqueued, body, field, message, fix):
    response = client.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "bad-1"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] in ("validation_error", "invalid_spec")
    [item] = error["fields"]
    assert item["field"] == field
    assert message in item["message"] or message in item.get("fix", "") or message == "extra_forbidden"
    assert fix in item["fix"]
    assert count(engine) == 0 and count(engine, IdempotencyRecord) == 0 and count(engine, Event) == 0
    assert enqueued.calls == []


def test_extra_field_fix_lists_allowed_fields(client):
    item = client.post("/api/v1/jobs", json={**SMALLEST, "lr": 0.1}).json()["error"]["fields"][0]
    assert item["field"] == "lr" and "learning_rate" in item["fix"] and item["fix"].startswith("remove it")


def test_model_under_a_model_root_is_accepted(client, settings):
    model = settings.model_roots[0] / "my-model"
    model.mkdir()
    response = client.post("/api/v1/jobs", json={**SMALLEST, "model": str(model)})
    assert response.status_code == 202 and response.json()["tags"]["base_model"] == str(model)


def test_invalid_json_is_422_json(client, engine):
    response = client.post("/api/v1/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    assert count(engine) == 0


def test_idempotent_replay_does_the_work_once(client, engine, enqueued):
    headers = {"Idempotency-Key": "abc-123"}
    first = client.post("/api/v1/jobs", json=SMALLEST, headers=headers)
    # the same JSON with another key order and spacing is the same request
    second = client.post(
        "/api/v1/jobs",
        content=b'{ "method": "frpo",  "kind": "train" }',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers.get("idempotent-replay") == "true"
    assert count(engine) == 1 and len(enqueued.calls) == 1

    mismatch = client.post("/api/v1/jobs", json={**SMALLEST, "seed": 3}, headers=headers)
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["fields"][0]["field"] == "Idempotency-Key"
    assert count(engine) == 1

    other_endpoint = client.post(f"/api/v1/jobs/{first.json()['id']}/cancel", headers=headers)
    assert other_endpoint.status_code == 422
    assert client.post("/api/v1/jobs", json=SMALLEST, headers={"Idempotency-Key": "abc-124"}).status_code == 202
    assert count(engine) == 2


def test_idempotency_keys_belong_to_one_api_key(client, keys, engine):
    headers = {"Idempotency-Key": "shared"}
    a = client.post("/api/v1/jobs", json=SMALLEST, headers=headers).json()
    b = client.post(
        "/api/v1/jobs", json=SMALLEST, headers={**headers, "Authorization": f"Bearer {keys['admin']}"}
    ).json()
    assert a["id"] != b["id"] and count(engine) == 2


def test_idempotent_cancel_replays(client):
    job_id = client.post("/api/v1/jobs", json=SMALLEST).json()["id"]
    headers = {"Idempotency-Key": "cancel-1"}
    first = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers)
    second = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers)
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 409


def test_concurrent_twin_with_the_same_idempotency_key_replays(client, engine, enqueued, monkeypatch):
    """Two requests with one key racing: the loser's commit hits the primary key, rolls back and replays."""
    first = client.post("/api/v1/jobs", json=SMALLEST, headers={"Idempotency-Key": "k1"})
    with session_scope(engine) as session:
        record = session.scalars(select(IdempotencyRecord)).one()
        api_key_id, request_hash = record.api_key_id, record.request_hash
    real_create_run = queries.create_run

    def twin_commits_first(session, spec, **kwargs):
        with session_scope(engine) as other:  # the twin request finishes while this one is mid-flight
            other.add(
                IdempotencyRecord(
                    api_key_id=api_key_id, key="k2", request_hash=request_hash, status_code=202, response=first.json()
                )
            )
        return real_create_run(session, spec, **kwargs)

    monkeypatch.setattr(queries, "create_run", twin_commits_first)
    second = client.post("/api/v1/jobs", json=SMALLEST, headers={"Idempotency-Key": "k2"})
    assert second.status_code == 202 and second.json() == first.json()
    assert count(engine) == 1 and len(enqueued.calls) == 1


def test_finetune_and_evaluate_start_from_a_finished_run(client, engine, enqueued):
    parent = client.post("/api/v1/jobs", json={"method": "frpo", "lamb": 0.2}).json()
    body = {"kind": "finetune", "parent_id": parent["id"], "max_steps": 5}
    refused = client.post("/api/v1/jobs", json=body)
    assert refused.status_code == 422
    [item] = refused.json()["error"]["fields"]
    assert item["field"] == "parent_id" and "queued" in item["message"]
    assert count(engine) == 1

    set_status(engine, parent["id"], RunStatus.succeeded)
    refused = client.post("/api/v1/jobs", json=body)
    assert refused.status_code == 422 and "no final model" in refused.json()["error"]["fields"][0]["message"]
    with session_scope(engine) as session:
        session.add(Artifact(run_id=uuid.UUID(parent["id"]), kind="model", path="/m", size_bytes=1, sha256="0" * 64))

    accepted = client.post("/api/v1/jobs", json=body)
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert job["kind"] == "finetune" and job["parent_id"] == parent["id"]
    assert job["tags"]["method"] == "frpo" and job["tags"]["lamb"] == 0.2 and job["tags"]["stage"] == "finetune"
    assert job["spec"]["eval"]["judge"] == "refusal-matcher"
    assert [call[0] for call in enqueued.calls][-1] == uuid.UUID(job["id"])

    missing = client.post("/api/v1/jobs", json={"kind": "evaluate", "run_id": str(uuid.uuid4())})
    assert missing.status_code == 422 and missing.json()["error"]["fields"][0]["field"] == "run_id"
    unknown = client.post("/api/v1/jobs", json={"kind": "distill"})
    assert unknown.status_code == 422 and unknown.json()["error"]["fields"][0]["field"] == "kind"


def test_pipeline_queues_its_first_stage_and_cancelling_it_cancels_the_rest(client, engine, enqueued):
    response = client.post("/api/v1/jobs", json={"kind": "pipeline", "train": {"method": "grpo"}})
    assert response.status_code == 202, response.text
    head = response.json()
    assert head["kind"] == "train" and head["tags"]["pipeline"] == head["id"]
    assert [call[0] for call in enqueued.calls] == [uuid.UUID(head["id"])]  # later stages wait for their parent
    finetune = client.get("/api/v1/jobs", params={"parent_id": head["id"]}).json()["items"]
    assert [job["kind"] for job in finetune] == ["finetune"] and finetune[0]["tags"]["method"] == "grpo"
    evaluate = client.get("/api/v1/jobs", params={"parent_id": finetune[0]["id"]}).json()["items"]
    assert [job["kind"] for job in evaluate] == ["evaluate"]

    assert client.post(f"/api/v1/jobs/{head['id']}/cancel").json()["status"] == "cancelled"
    for job in (finetune[0], evaluate[0]):
        assert client.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "cancelled"

    bad = client.post("/api/v1/jobs", json={"kind": "pipeline", "finetune": {"lr": 1}})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "finetune.lr"


def test_a_finetune_with_both_or_neither_steps_and_epochs_is_422_naming_both(client, engine):
    for given, which in (({"max_steps": 10, "epochs": 1}, "both"), ({"max_steps": None}, "neither")):
        response = client.post("/api/v1/jobs", json={"kind": "finetune", "model": "tiny", **given})
        assert response.status_code == 422, response.text
        [item] = response.json()["error"]["fields"]
        assert item["field"] == "body" and f"exactly one of max_steps and epochs ({which} given)" in item["message"]
        assert "max_steps=N or epochs=E" in item["message"]
    assert count(engine) == 0
