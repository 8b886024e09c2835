"""`frpo_client.Client` against the real API (uvicorn in a thread, a seeded SQLite database)."""

from __future__ import annotations

import pytest

from frpo_client import ApiError, Client
from testkit.service import free_port

pytestmark = pytest.mark.integration


def test_it_is_configured_from_the_environment():
    client = Client.from_env({"FRPO_API_URL": "http://api:8000/", "FRPO_API_KEY": " k "})
    assert client.url == "http://api:8000"
    assert Client.from_env({}).url == "http://127.0.0.1:8000"


def test_errors_carry_the_apis_message_and_the_fix(seeded_api):
    url, seeded = seeded_api
    with pytest.raises(ApiError, match="invalid or revoked API key.*Set FRPO_API_KEY") as info:
        Client(url, "frpo_nope_nope").list_jobs()
    assert info.value.status == 401 and info.value.code == "unauthorized"
    with pytest.raises(ApiError, match="lacks the 'submit' scope") as info:
        Client(url, seeded.read_key).submit_job({"kind": "train"})
    assert info.value.status == 403
    with pytest.raises(ApiError, match="no job with id") as info:
        Client(url, seeded.read_key).get_job("00000000-0000-0000-0000-000000000000")
    assert info.value.status == 404
    with pytest.raises(ApiError) as info:
        Client(url, seeded.submit_key).submit_job({"kind": "train", "lamb": -1})
    assert info.value.status == 422 and "lamb" in str(info.value) and "Fix:" in str(info.value)


def test_an_unreachable_api_is_one_sentence_naming_frpo_serve():
    with pytest.raises(ApiError, match="cannot reach the API at .*frpo serve.*FRPO_API_URL") as info:
        Client(f"http://127.0.0.1:{free_port()}", "k").health()
    assert info.value.status is None and "\n" not in str(info.value)


def test_reads(seeded_api):
    url, seeded = seeded_api
    client = Client(url, seeded.read_key)
    assert client.health() == {"status": "ok", "checks": {}}
    assert "TrainSpec" in client.openapi()["components"]["schemas"]
    assert len(client.all_jobs(kind="finetune")) == 13  # 12 + the failed one
    assert len(client.all_jobs(kind="finetune", max_items=5)) == 5
    [sweep] = client.list_sweeps()["items"]
    assert sweep["id"] == seeded.sweep_id and sweep["job_count"] == 12
    assert len(client.sweep_jobs(seeded.sweep_id)) == 12
    run_id = seeded.finetune_ids()[0]
    series = client.metrics(run_id, ["eval/refusal_rate", "never/logged"], max_points=50)
    assert series["never/logged"]["steps"] == []
    assert (
        dict(zip(series["eval/refusal_rate"]["steps"], series["eval/refusal_rate"]["values"], strict=True))
        == (seeded.refusal[run_id])
    )
    assert "eval/kl_safety" in client.metric_keys(run_id)
    assert [e["message"] for e in client.events(run_id)["items"]] == ["succeeded"]
    assert [e["message"] for e in client.all_events(run_id)] == ["succeeded"]
    assert client.artifacts(run_id)[0]["kind"] == "model"


def test_series_come_back_whole(seeded_api):
    url, seeded = seeded_api
    client = Client(url, seeded.read_key)
    run_id = seeded.finetune_ids()[0]
    whole = client.series(run_id)
    assert set(whole) == set(client.metric_keys(run_id))
    assert dict(whole["eval/refusal_rate"]) == seeded.refusal[run_id]
    chart = client.metrics(run_id, max_points=10)
    assert any(len(chart[key]["steps"]) < len(points) for key, points in whole.items())  # a chart is downsampled


def test_presets_are_listed_with_what_they_need(seeded_api):
    url, seeded = seeded_api
    presets = {p["name"]: p for p in Client(url, seeded.read_key).presets()}
    assert presets["toy-frontier"]["kind"] == "sweep"
    assert "base.train.dataset" in presets["safety-frontier-mistral-7b"]["requires"]
    assert presets["toy-safety"]["kind"] == "train" and presets["toy-safety"]["values"]["dataset"] == "toy_safety"


def test_a_submitted_sweep_can_be_cancelled_whole(empty_api):
    url, seeded = empty_api
    client = Client(url, seeded.submit_key)
    base = {"kind": "pipeline", "train": {"preset": "toy-safety"}, "finetune": {"preset": "toy-benign-sft"}}
    sweep = client.submit_sweep({"name": "cancel me", "base": base, "grid": {"lamb": [0.5, 1.0], "seed": [0, 1]}})
    jobs = client.sweep_jobs(sweep["id"])
    assert len({job["id"] for job in jobs if job["kind"] == "finetune"}) == 6  # queued later stages (GRPO's too)
    cancelled = client.cancel_sweep(sweep["id"])
    assert {job["id"] for job in cancelled} <= {job["id"] for job in jobs} and cancelled
    assert {job["status"] for job in client.sweep_jobs(sweep["id"])} == {"cancelled"}
    assert client.cancel_sweep(sweep["id"]) == []  # nothing left to cancel: not an error
    [job] = client.wait(sweep["job_ids"][0], poll_s=0.1, timeout_s=5)
    assert job["status"] == "cancelled"


def test_waiting_for_a_job_that_does_not_end_times_out_naming_it(empty_api):
    url, seeded = empty_api
    client = Client(url, seeded.submit_key)
    job = client.submit_job({"kind": "train", "preset": "toy-safety"})
    seen = []
    with pytest.raises(ApiError, match=f"still running after 0.3 s, e.g. {job['id']}"):
        client.wait(job["id"], poll_s=0.1, timeout_s=0.3, on_poll=seen.append)
    assert seen and seen[0][0]["status"] == "queued"


def test_a_runs_judged_answers_are_paged_and_filtered(seeded_api):
    url, seeded = seeded_api
    client = Client(url, seeded.read_key)
    run_id = seeded.finetune_ids()[0]
    assert client.sample_steps(run_id) == [0, 100]
    at_start = client.samples(run_id, step=0)["items"]
    assert [s["verdict"] for s in at_start] == ["refused", "refused", "refused", "answered"]
    assert at_start[0]["prompt_sha256"] and at_start[0]["judge"] == "refusal-matcher"
    assert [s["prompt_id"] for s in client.all_samples(run_id, step=100, verdict="refused")] == ["0"]
    assert len(list(client.all_samples(run_id))) == 8
    with pytest.raises(ApiError, match="verdict") as info:
        client.samples(run_id, verdict="maybe")
    assert info.value.status == 422
