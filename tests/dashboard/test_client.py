"""The dashboard's client configuration and selection against the real API (uvicorn, a seeded SQLite database).

`frpo_client.Client` itself is tested in tests/frpo_client/."""

from __future__ import annotations

import pytest

from dashboard import selection
from dashboard.client import ApiConfig, client_for, concurrently
from frpo_client import ApiError, Client

pytestmark = pytest.mark.integration


def test_config_comes_from_the_environment():
    assert ApiConfig.from_env({}) == ApiConfig("http://127.0.0.1:8000", "")
    env = {"FRPO_API_URL": "http://api:8000/", "FRPO_API_KEY": "fallback"}
    assert ApiConfig.from_env(env) == ApiConfig("http://api:8000", "fallback")
    assert ApiConfig.from_env({**env, "FRPO_DASHBOARD_API_KEY": "read"}).key == "read"


def test_a_refused_key_names_the_dashboards_variable(live):
    with pytest.raises(ApiError, match="invalid or revoked API key.*FRPO_DASHBOARD_API_KEY"):
        client_for(ApiConfig(live.url, "frpo_nope_nope")).list_jobs()
    assert client_for(ApiConfig(live.url, "k")) is client_for(ApiConfig(live.url, "k"))  # one pool per API and key


def test_fetches_run_concurrently_in_order():
    assert concurrently(lambda x: x * 2, [1, 2, 3]) == [2, 4, 6]


def test_a_selection_is_closed_along_its_lineage(live):
    client = Client(live.url, live.seeded.read_key)
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
    with pytest.raises(ApiError, match="no run with id 'nope'"):
        selection.collect(client, run_ids=["nope"])


def test_a_benchmark_selection_brings_the_evaluation_runs(math_api):
    client = Client(math_api.url, math_api.seeded.read_key)
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
