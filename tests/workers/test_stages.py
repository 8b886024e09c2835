"""Fine-tuning and evaluation jobs from a finished training run, executed by the runner on the embedded store."""

from __future__ import annotations

import pytest

from store.db import session_scope
from store.models import Run, RunKind, RunStatus
from store.queries import check_lineage, create_pipeline, create_run, final_model
from store.settings import Settings
from store.specs import EvalSpec, EvaluateSpec, FinetuneSpec, PipelineSpec, SpecError, TrainSpec
from tests.helpers import FAST, get_run, steps_by_key
from tests.helpers import create_run as create_train_run
from workers import runner

pytestmark = pytest.mark.slow

EVAL = EvalSpec(n_harmful=4, n_harmless=4, every=2, max_new_tokens=8)


@pytest.fixture
def settings(tmp_path, sqlite_url):
    return Settings(data_dir=tmp_path, database_url=sqlite_url, lease_seconds=10, heartbeat_seconds=1)


def submit(engine, spec) -> Run:
    """As the API does: check the lineage, then create the run."""
    with session_scope(engine) as session:
        return create_run(session, spec, parent=check_lineage(session, spec))


def metric_values(engine, run_id, key) -> dict[int, float]:
    from sqlalchemy import select

    from store.models import MetricPoint

    with session_scope(engine) as session:
        rows = session.execute(
            select(MetricPoint.step, MetricPoint.value).where(MetricPoint.run_id == run_id, MetricPoint.key == key)
        ).all()
    return dict(rows)


def test_finetune_then_evaluate_a_trained_run(sqlite_engine, settings):
    trained = submit(sqlite_engine, TrainSpec(**FAST, lamb=0.5)).id
    with pytest.raises(SpecError, match="queued"):  # not finished yet: nothing to fine-tune
        submit(sqlite_engine, FinetuneSpec(parent_id=trained))
    assert runner.execute(trained, settings, sqlite_engine) == "succeeded"

    finetune = submit(sqlite_engine, FinetuneSpec(parent_id=trained, max_steps=4, save_steps=2, eval=EVAL))
    assert finetune.kind == RunKind.finetune and finetune.parent_id == trained
    assert finetune.tags["method"] == "frpo" and finetune.tags["lamb"] == 0.5 and finetune.tags["stage"] == "finetune"
    assert runner.execute(finetune.id, settings, sqlite_engine) == "succeeded"
    steps = steps_by_key(sqlite_engine, finetune.id)
    assert steps["loss"] == [1, 2, 3, 4]
    assert steps["eval/refusal_rate"] == [0, 2, 4] and steps["eval/kl_safety"] == [0, 2, 4]
    kl = metric_values(sqlite_engine, finetune.id, "eval/kl_safety")
    assert kl[0] == pytest.approx(0.0, abs=1e-9) and kl[4] > 0  # the reference is the model SFT started from
    with session_scope(sqlite_engine) as session:
        assert final_model(session, finetune.id) is not None

    evaluation = submit(sqlite_engine, EvaluateSpec(run_id=finetune.id, eval=EVAL))
    assert evaluation.parent_id == finetune.id
    assert runner.execute(evaluation.id, settings, sqlite_engine) == "succeeded"
    steps = steps_by_key(sqlite_engine, evaluation.id)
    assert steps["eval/refusal_rate"] == [0] and steps["eval/refusal_rate_normal"] == [0]
    # KL of the fine-tuned model against the trained one it started from, which the SFT moved
    assert metric_values(sqlite_engine, evaluation.id, "eval/kl_safety")[0] > 0
    assert get_run(sqlite_engine, evaluation.id).progress == 1.0


def test_lineage_errors_name_the_field(sqlite_engine):
    missing = "123e4567-e89b-12d3-a456-426614174000"
    with pytest.raises(SpecError, match="there is no run") as caught:
        submit(sqlite_engine, EvaluateSpec(run_id=missing))
    assert caught.value.field == "run_id"
    failed = create_train_run(sqlite_engine, columns={"status": RunStatus.failed})
    with pytest.raises(SpecError, match="failed; it must have succeeded") as caught:
        submit(sqlite_engine, FinetuneSpec(parent_id=failed))
    assert caught.value.field == "parent_id"


def test_pipeline_stages_wait_for_their_parent_and_failures_cascade(sqlite_engine, settings):
    sent: list = []

    def send(run_id, queue):
        sent.append((run_id, queue))

    small = {"max_steps": 2, "save_steps": 2, "eval": {"n_harmful": 2, "n_harmless": 2, "every": 2}}
    with session_scope(sqlite_engine) as session:
        runs = create_pipeline(session, PipelineSpec(train=TrainSpec(**FAST), finetune=small))
        train, finetune, evaluate = (run.id for run in runs)
    assert [r.tags["pipeline"] for r in runs] == [str(train)] * 3
    # a later stage is not claimable before its parent has succeeded (a stray message does nothing)
    assert runner.execute(finetune, settings, sqlite_engine, send=send) == "queued"
    assert runner.execute(train, settings, sqlite_engine, send=send) == "succeeded"
    assert sent == [(finetune, "cpu")]
    assert runner.execute(finetune, settings, sqlite_engine, send=send) == "succeeded"
    assert sent[-1] == (evaluate, "cpu")
    assert runner.execute(evaluate, settings, sqlite_engine, send=send) == "succeeded"

    # a first stage that fails cancels the stages after it
    refused = TrainSpec(**FAST, trl={"steps_per_generation": 2})  # FRPOConfig refuses it when the job starts
    with session_scope(sqlite_engine) as session:
        train, finetune, evaluate = (run.id for run in create_pipeline(session, PipelineSpec(train=refused)))
    assert runner.execute(train, settings, sqlite_engine, send=send) == "failed"
    assert get_run(sqlite_engine, finetune).status == RunStatus.cancelled
    assert get_run(sqlite_engine, evaluate).status == RunStatus.cancelled
