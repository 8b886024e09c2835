"""store.queries on both databases: API keys, runs, cancel/retry rules, sweeps, metric series."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert

from store.db import make_engine, session_scope
from store.metrics import record_artifact
from store.migrate import upgrade
from store.models import ApiKey, MetricPoint, RunStatus
from store.queries import (
    Conflict,
    NotFound,
    authenticate,
    cancel_run,
    check_lineage,
    checkpoint_at,
    create_api_key,
    create_pipeline,
    create_run,
    create_sweep,
    get_run,
    key_has_scope,
    list_runs,
    metric_keys,
    metric_series,
    retry_run,
    revoke_api_key,
)
from store.specs import FinetuneSpec, PipelineSpec, SpecError, SweepSpec, TrainSpec


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def engine(request):
    url = request.getfixturevalue(f"{request.param}_url")
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_api_key_round_trip_stores_only_a_hash(engine):
    with session_scope(engine) as session:
        token = create_api_key(session, "ci", "submit")
    marker, prefix, secret = token.split("_", 2)
    assert marker == "frpo" and len(prefix) == 12 and len(secret) >= 32
    with session_scope(engine) as session:
        key = authenticate(session, token)
        assert key is not None and key.name == "ci" and key.scopes == ["submit"]
        assert secret not in key.secret_hash and len(key.secret_hash) == 64
        assert authenticate(session, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert authenticate(session, f"frpo_{'0' * 12}_{secret}") is None
        assert authenticate(session, "frpo_only") is None and authenticate(session, "") is None
        assert revoke_api_key(session, prefix) and not revoke_api_key(session, prefix)
    with session_scope(engine) as session:
        assert authenticate(session, token) is None
    with pytest.raises(ValueError):
        with session_scope(engine) as session:
            create_api_key(session, "x", "root")


def test_scopes_imply_the_ones_below():
    def key(scope):
        return ApiKey(name="k", prefix="p", secret_hash="h", scopes=[scope])

    assert [key_has_scope(key("read"), s) for s in ("read", "submit", "admin")] == [True, False, False]
    assert [key_has_scope(key("submit"), s) for s in ("read", "submit", "admin")] == [True, True, False]
    assert [key_has_scope(key("admin"), s) for s in ("read", "submit", "admin")] == [True, True, True]


def test_runs_cancel_and_retry_rules(engine):
    with session_scope(engine) as session:
        queued = create_run(session, TrainSpec(method="grpo", seed=3))
        running = create_run(session, TrainSpec())
    assert queued.tags["method"] == "grpo" and queued.tags["lamb"] is None and queued.spec["seed"] == 3
    with session_scope(engine) as session:
        get_run(session, running.id).status = RunStatus.running
    with session_scope(engine) as session:
        assert cancel_run(session, queued.id).status == RunStatus.cancelled
        flagged = cancel_run(session, running.id)
        assert flagged.status == RunStatus.running and flagged.cancel_requested
    with session_scope(engine) as session:
        with pytest.raises(Conflict):
            cancel_run(session, queued.id)
        with pytest.raises(Conflict):
            retry_run(session, running.id)
        with pytest.raises(NotFound):
            get_run(session, uuid.uuid4())
    with session_scope(engine) as session:
        retry = retry_run(session, queued.id)
    assert retry.status == RunStatus.queued and retry.tags["retry_of"] == str(queued.id) and retry.spec == queued.spec
    with session_scope(engine) as session:
        assert list_runs(session, method="grpo").total == 2
        assert list_runs(session, status=RunStatus.running).items[0].id == running.id
        page = list_runs(session, limit=1, offset=0)
        assert page.total == 3 and page.items[0].id == retry.id


def test_retrying_a_stage_whose_parent_failed_is_refused_naming_the_parent(engine):
    with session_scope(engine) as session:
        train, finetune, _ = create_pipeline(session, PipelineSpec())
    with session_scope(engine) as session:
        get_run(session, train.id).status = RunStatus.failed
        get_run(session, finetune.id).status = RunStatus.cancelled
    with session_scope(engine) as session:
        with pytest.raises(Conflict, match=f"starts from run {train.id}, which is failed.*retry run {train.id}"):
            retry_run(session, finetune.id)
        assert retry_run(session, train.id).status == RunStatus.queued  # the first stage itself can be retried
    with session_scope(engine) as session:
        assert list_runs(session).total == 4  # the refused retry wrote nothing


def test_sweep_points_are_linked_runs(engine):
    spec = SweepSpec(name="s", base=TrainSpec(), grid={"lamb": [0.1, 1.0, 10.0]}, include_grpo=True)
    with session_scope(engine) as session:
        sweep, runs = create_sweep(session, spec)
    assert len(runs) == 4 and all(r.sweep_id == sweep.id and r.tags["sweep"] == "s" for r in runs)
    with session_scope(engine) as session:
        assert list_runs(session, sweep_id=sweep.id).total == 4


def test_a_sweeps_grpo_runs_along_one_run_fine_tune_from_their_checkpoints(engine):
    base = {"kind": "pipeline", "train": {"preset": "toy-safety"}, "evaluate": True}
    spec = SweepSpec.model_validate(
        {"name": "s", "base": base, "grid": {"lamb": [0.5], "seed": [0]}, "grpo_budgets": {"checkpoints": [60, 120]}}
    )
    with session_scope(engine) as session:
        sweep, first_stages = create_sweep(session, spec)
        assert sweep.grid["grpo_budgets"] == {"checkpoints": [60, 120]}
        assert sorted(run.tags["method"] for run in first_stages) == ["frpo", "grpo"]  # one GRPO run, enqueued alone
        grpo = next(run for run in first_stages if run.tags["method"] == "grpo")
        assert grpo.spec["max_steps"] == 120 and grpo.spec["keep_checkpoints"] == [60, 120]
        finetunes = list_runs(session, parent_id=grpo.id).items
        assert sorted(run.spec["parent_step"] for run in finetunes) == [60, 120]
        assert sorted(run.tags["parent_step"] for run in finetunes) == [60, 120]  # what the analysis reads
        assert all(run.tags["pipeline"] == str(grpo.id) for run in finetunes)
        assert all(list_runs(session, parent_id=run.id).total == 1 for run in finetunes)  # each one evaluated
        assert list_runs(session, sweep_id=sweep.id).total == 3 + 5  # FRPO's pipeline, GRPO's run with two


def test_a_fine_tuning_from_a_checkpoint_needs_one_the_parent_kept(engine):
    with session_scope(engine) as session:
        parent = create_run(session, TrainSpec())
        parent.status = RunStatus.succeeded
        record_artifact(session, parent.id, "model", "/runs/final", 1, "f" * 64, 40)
        record_artifact(session, parent.id, "checkpoint", "/runs/attempt-1/checkpoint-20", 1, "a" * 64, 20)
        record_artifact(session, parent.id, "checkpoint", "/runs/attempt-2/checkpoint-20", 1, "b" * 64, 20)
        assert checkpoint_at(session, parent.id, 20).path == "/runs/attempt-2/checkpoint-20"  # the newest attempt's
        assert check_lineage(session, FinetuneSpec(parent_id=parent.id, parent_step=20)) is not None
        with pytest.raises(SpecError, match="kept no checkpoint at step 30") as caught:
            check_lineage(session, FinetuneSpec(parent_id=parent.id, parent_step=30))
        assert caught.value.field == "parent_step"


def test_metric_series_is_ordered_by_step(engine):
    with session_scope(engine) as session:
        run = create_run(session, TrainSpec())
        session.execute(
            insert(MetricPoint),
            [{"run_id": run.id, "key": "reward", "step": s, "value": s / 10} for s in (5, 1, 3)]
            + [{"run_id": run.id, "key": "loss", "step": 1, "value": 2.0}],
        )
    with session_scope(engine) as session:
        assert metric_keys(session, run.id) == ["loss", "reward"]
        assert metric_series(session, run.id, "reward") == ([1, 3, 5], [0.1, 0.3, 0.5])
