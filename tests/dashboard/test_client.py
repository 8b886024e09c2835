"""The dashboard's HTTP client and selection against the real API (uvicorn, a seeded SQLite database)."""

from __future__ import annotations

import pytest

from dashboard import selection
from dashboard.client import ApiClient, ApiConfig, DashboardError, concurrently
from testkit.service import free_port

pytestmark = pytest.mark.integration


def test_config_comes_from_the_environment():
    assert ApiConfig.from_env({}) == ApiConfig("http://127.0.0.1:8000", "")
    env = {"FRPO_API_URL": "http://api:8000/", "FRPO_API_KEY": "fallback"}
    assert ApiConfig.from_env(env) == ApiConfig("http://api:8000", "fallback")
    assert ApiConfig.from_env({**env, "FRPO_DASHBOARD_API_KEY": "read"}).key == "read"


def test_errors_carry_the_apis_message_and_a_fix(live):
    with pytest.raises(DashboardError, match="invalid or revoked API key.*FRPO_DASHBOARD_API_KEY") as info:
        ApiClient(ApiConfig(live.url, "frpo_nope_nope")).list_jobs()
    assert info.value.status == 401 and info.value.code == "unauthorized"
    read = ApiClient(ApiConfig(live.url, live.seeded.read_key))
    with pytest.raises(DashboardError, match="lacks the 'submit' scope") as info:
        read.submit_job({"kind": "train"})
    assert info.value.status == 403
    with pytest.raises(DashboardError, match="no job with id") as info:
        read.get_job("00000000-0000-0000-0000-000000000000")
    assert info.value.status == 404
    submit = ApiClient(ApiConfig(live.url, live.seeded.submit_key))
    with pytest.raises(DashboardError) as info:
        submit.submit_job({"kind": "train", "lamb": -1})
    assert info.value.status == 422 and "lamb" in str(info.value) and "Fix:" in str(info.value)
    with pytest.raises(DashboardError, match="cannot reach the API at .*FRPO_API_URL"):
        ApiClient(ApiConfig(f"http://127.0.0.1:{free_port()}", "k")).health()


def test_reads(live):
    client = ApiClient(ApiConfig(live.url, live.seeded.read_key))
    assert client.health() == {"status": "ok", "checks": {}}
    assert "TrainSpec" in client.openapi()["components"]["schemas"]
    finetunes = client.all_jobs(kind="finetune", max_items=1000)
    assert len(finetunes) == 13  # 12 + the failed one
    assert len(client.all_jobs(kind="finetune", max_items=5)) == 5
    [sweep] = client.list_sweeps()["items"]
    assert sweep["id"] == live.seeded.sweep_id and sweep["job_count"] == 12
    run_id = live.seeded.finetune_ids()[0]
    series = client.metrics(run_id, ["eval/refusal_rate", "never/logged"], max_points=50)
    assert series["never/logged"]["steps"] == []
    assert (
        dict(zip(series["eval/refusal_rate"]["steps"], series["eval/refusal_rate"]["values"], strict=True))
        == (live.seeded.refusal[run_id])
    )
    assert "eval/kl_safety" in client.metric_keys(run_id)
    assert [e["message"] for e in client.events(run_id)["items"]] == ["succeeded"]
    assert client.artifacts(run_id)[0]["kind"] == "model"
    assert concurrently(lambda x: x * 2, [1, 2, 3]) == [2, 4, 6]


def test_a_selection_is_closed_along_its_lineage(live):
    client = ApiClient(ApiConfig(live.url, live.seeded.read_key))
    picked = live.seeded.finetune_ids()
    finetune, rl = selection.split(selection.collect(client, run_ids=picked))
    assert {r["id"] for r in finetune} == set(picked)
    assert {r["id"] for r in rl} == set(live.seeded.rl)  # their RL parents came along
    # a sweep lists its RL runs; their fine-tuning runs (the failed one too) are found by parent_id
    finetune, rl = selection.split(selection.collect(client, sweep_id=live.seeded.sweep_id))
    assert {r["id"] for r in finetune} == set(picked) | {live.seeded.failed_id} and len(rl) == 12
    # picking RL runs brings their fine-tuning runs
    one_rl = next(iter(live.seeded.rl))
    finetune, _ = selection.split(selection.collect(client, run_ids=[one_rl]))
    assert [r["parent_id"] for r in finetune] == [one_rl]
    with pytest.raises(DashboardError, match="no run with id 'nope'"):
        selection.collect(client, run_ids=["nope"])


def test_a_benchmark_selection_brings_the_evaluation_runs(math_api):
    client = ApiClient(ApiConfig(math_api.url, math_api.seeded.read_key))
    seeded = math_api.seeded
    ids = seeded.evaluation_ids("toy math frontier")
    after = next(i for i in ids if seeded.evaluations[i]["evaluates"] == "after_finetune")

    def kinds(runs) -> list[str]:
        return sorted(r["kind"] for r in runs)

    # an evaluation brings the run it evaluated (and that run's RL parent), for every view
    assert kinds(selection.collect(client, run_ids=[after])) == ["evaluate", "finetune", "train"]
    # and, for the Benchmarks view, the pipeline's other evaluation (the RL run's, before fine-tuning)
    runs = selection.collect(client, run_ids=[after], evaluations=True)
    assert kinds(runs) == ["evaluate", "evaluate", "finetune", "train"]
    assert {r["tags"]["pipeline"] for r in runs} == {seeded.evaluations[after]["pipeline"]}
    # picked RL runs bring their fine-tuning runs and both evaluations; a pipeline sweep lists them itself
    rl = next(r["parent_id"] for r in runs if r["kind"] == "finetune")
    assert kinds(selection.collect(client, run_ids=[rl], evaluations=True)) == kinds(runs)
    sweep = selection.collect(client, sweep_id=seeded.sweeps["toy math frontier"], evaluations=True)
    assert {r["id"] for r in sweep if r["kind"] == "evaluate"} == set(ids)
