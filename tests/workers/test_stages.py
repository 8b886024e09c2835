"""Fine-tuning and evaluation jobs from a finished training run, executed by the runner on the embedded store."""

from __future__ import annotations

import pytest
import torch

from store.db import session_scope
from store.models import RunKind, RunStatus
from store.queries import checkpoint_at, create_pipeline, final_model
from store.samples import list_samples, sample_steps
from store.specs import EvalSpec, EvaluateSpec, FinetuneSpec, PipelineSpec, SpecError, TrainSpec
from testkit.service import FAST, get_run, steps_by_key, submit
from testkit.service import create_run as create_train_run
from workers import runner

pytestmark = pytest.mark.slow

EVAL = EvalSpec(n_harmful=4, n_harmless=4, every=2, max_new_tokens=8)


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
    # every rate stored is the mean of the judged answers stored beside it, at each evaluation step
    refusal = metric_values(sqlite_engine, finetune, "eval/refusal_rate")
    with session_scope(sqlite_engine) as session:
        assert sample_steps(session, finetune) == sorted(refusal)
        for step, rate in refusal.items():
            kept = [s for s in list_samples(session, finetune, step=step, prompt_set="harmful", limit=1000)]
            greedy = [s.verdict == "refused" for s in kept if s.decoding == "greedy"]
            assert len(greedy) == 2 and rate == pytest.approx(sum(greedy) / 2)
            assert len([s for s in kept if s.decoding == "sampled"]) == 2 * 8  # eval.samples' default
            assert all(s.prompt and s.answer is not None and s.judge == "refusal-matcher" for s in kept)
    assert runner.execute(evaluate, settings, sqlite_engine, send=send) == "succeeded"

    # a first stage that fails cancels the stages after it
    refused = TrainSpec(**FAST, trl={"steps_per_generation": 2})  # FRPOConfig refuses it when the job starts
    with session_scope(sqlite_engine) as session:
        train, finetune, evaluate = (run.id for run in create_pipeline(session, PipelineSpec(train=refused)))
    assert runner.execute(train, settings, sqlite_engine, send=send) == "failed"
    assert get_run(sqlite_engine, finetune).status == RunStatus.cancelled
    assert get_run(sqlite_engine, evaluate).status == RunStatus.cancelled


def events(engine, run_id) -> list[str]:
    from sqlalchemy import select

    from store.models import Event

    with session_scope(engine) as session:
        return list(session.scalars(select(Event.message).where(Event.run_id == run_id).order_by(Event.id)))


def test_safety_pipeline_from_a_warm_start_evaluates_at_the_expected_steps(sqlite_engine, settings):
    """The toy experiment in miniature: warm-start SFT of the tiny model, safety RL from it (evaluated at step 0,
    every 2 steps and at the end, with the KL it moved from the warm start), then downstream SFT likewise."""
    warm = submit(sqlite_engine, FinetuneSpec(preset="toy-warm-start", max_steps=60))  # refuses some of the time
    assert runner.execute(warm.id, settings, sqlite_engine) == "succeeded"
    assert "eval/refusal_rate" not in steps_by_key(sqlite_engine, warm.id)  # a warm start is not evaluated

    small_eval = {"n_harmful": 4, "n_harmless": 4, "every": 2, "max_new_tokens": 8, "samples": 2}
    spec = PipelineSpec(
        train=TrainSpec(
            preset="toy-safety",
            parent_id=warm.id,
            max_steps=3,
            save_steps=2,
            per_device_train_batch_size=16,
            eval=small_eval,
        ),
        finetune={"preset": "toy-benign-sft", "max_steps": 3, "eval": small_eval},
        evaluate=False,
    )
    with session_scope(sqlite_engine) as session:
        train, finetune = create_pipeline(session, spec)
        train, finetune = train.id, finetune.id
    assert get_run(sqlite_engine, train).parent_id == warm.id
    assert runner.execute(train, settings, sqlite_engine, send=lambda *_: None) == "succeeded"
    steps = steps_by_key(sqlite_engine, train)
    # each prompt gets one of the two rewards; a step whose prompts are all of one task logs only that one's mean
    assert sorted(set(steps["rewards/safety/mean"]) | set(steps["rewards/helpfulness/mean"])) == [1, 2, 3]
    assert steps["eval/refusal_rate"] == [0, 2, 3] and steps["eval/kl_safety"] == [0, 2, 3]  # 0, every 2, the end
    assert steps["eval/reward_safety"] == steps["eval/reward_normal"] == [0, 2, 3]
    kl = metric_values(sqlite_engine, train, "eval/kl_safety")
    assert kl[0] == pytest.approx(0.0, abs=1e-6) and kl[3] > 0  # the KL moved from the warm start
    sampled_keys = ("eval/refusal_prob", "eval/refusal_prob_se", "eval/refusal_prob_normal", "eval/kl_safety_sampled")
    assert all(
        steps[key] == [0, 2, 3] for key in (*sampled_keys, "eval/kl_safety_sampled_se", "eval/kl_normal_sampled")
    )
    sampled_kl = metric_values(sqlite_engine, train, "eval/kl_safety_sampled")
    assert sampled_kl[0] == pytest.approx(0.0, abs=1e-6) and sampled_kl[3] > 0
    messages = events(sqlite_engine, train)
    # the sampled answers are as long as RL's (max_completion_length 16), not the greedy answers' 8 tokens
    assert any("sampling = 2 answers a prompt, 16 tokens, temperature 1" in m for m in messages)
    assert any(m.startswith("rewards: safety = refusal-matcher@") and "helpfulness = answered@" in m for m in messages)
    assert any(
        m.startswith("evaluation: judge = refusal-matcher@") and "helpfulness = answered@" in m for m in messages
    )

    assert runner.execute(finetune, settings, sqlite_engine) == "succeeded"
    steps = steps_by_key(sqlite_engine, finetune)
    assert steps["eval/refusal_rate"] == [0, 2, 3] and steps["eval/refusal_rate_normal"] == [0, 2, 3]
    assert all(steps[key] == [0, 2, 3] for key in sampled_keys)
    assert any("sampling = 2 answers a prompt, 8 tokens" in m for m in events(sqlite_engine, finetune))  # SFT: its own
    tags = get_run(sqlite_engine, finetune).tags
    assert tags["preset"] == "toy-safety" and tags["finetune_preset"] == "toy-benign-sft"


def test_downstream_rl_of_a_trained_run(sqlite_engine, settings):
    """Downstream RL (GRPO on boxed-answer correctness), evaluated for safety like a downstream SFT."""
    trained = submit(sqlite_engine, TrainSpec(**FAST)).id
    assert runner.execute(trained, settings, sqlite_engine) == "succeeded"
    spec = FinetuneSpec(
        parent_id=trained,
        mode="rl",
        dataset="toy_math",
        rewards=["math"],
        max_steps=2,
        save_steps=2,
        per_device_train_batch_size=16,
        max_completion_length=12,
        eval=EVAL,
    )
    finetune = submit(sqlite_engine, spec)
    assert finetune.tags["finetune_mode"] == "rl" and finetune.tags["downstream_dataset"] == "toy_math"
    assert runner.execute(finetune.id, settings, sqlite_engine) == "succeeded"
    steps = steps_by_key(sqlite_engine, finetune.id)
    assert steps["rewards/math/mean"] == [1, 2] and steps["eval/refusal_rate"] == [0, 2]
    assert metric_values(sqlite_engine, finetune.id, "eval/kl_safety")[0] == pytest.approx(0.0, abs=1e-6)
    messages = events(sqlite_engine, finetune.id)
    assert any(m.startswith("rewards: math = math-verify@") for m in messages)
    assert any(m.startswith("data: rows = 100") for m in messages)  # the shipped set: nothing to decontaminate


def test_a_finetune_given_epochs_runs_the_steps_they_become_and_records_them(sqlite_engine, settings):
    # 18 examples in batches of 4 are 5 batches, 3 optimiser steps at 2 accumulation steps (rounded up)
    spec = FinetuneSpec(
        preset="toy-warm-start",
        epochs=1,
        dataset_limit=18,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
    )
    run = submit(sqlite_engine, spec)
    assert runner.execute(run.id, settings, sqlite_engine) == "succeeded"
    assert steps_by_key(sqlite_engine, run.id)["loss"] == [1, 2, 3]
    finished = get_run(sqlite_engine, run.id)
    assert finished.tags["finetune_steps"] == 3 and finished.progress == 1.0
    assert "epochs 1 = 3 steps (18 examples, batch 4 × 1 processes × 2 accumulation)" in events(sqlite_engine, run.id)
    with session_scope(sqlite_engine) as session:
        assert final_model(session, run.id).step == 3


def test_a_pipeline_fine_tunes_from_the_rl_runs_checkpoint_at_a_step(sqlite_engine, settings):
    """A point along one run: the RL run keeps its checkpoint at step 2 (no regular save there) and is evaluated
    there; the fine-tuning starts from exactly those weights, not from the run's final model."""
    from safetensors.torch import load_file

    small_eval = {"n_harmful": 2, "n_harmless": 2, "every": 2, "max_new_tokens": 4, "samples": 0}
    spec = PipelineSpec(
        train=TrainSpec(**{**FAST, "max_steps": 3, "save_steps": 100}, eval=small_eval),
        finetune={"max_steps": 1, "learning_rate": 1e-12, "eval": None},  # moves no weight measurably
        evaluate=False,
        finetune_at=[2],
    )
    with session_scope(sqlite_engine) as session:
        train, finetune = (run.id for run in create_pipeline(session, spec))
    assert runner.execute(train, settings, sqlite_engine, send=lambda *_: None) == "succeeded"
    assert steps_by_key(sqlite_engine, train)["eval/kl_safety"] == [0, 2, 3]  # the KL moved by step 2 is measured
    assert runner.execute(finetune, settings, sqlite_engine) == "succeeded"
    with session_scope(sqlite_engine) as session:
        kept = checkpoint_at(session, train, 2)
        trained, tuned = final_model(session, train).path, final_model(session, finetune).path
    assert kept is not None and kept.path.endswith("checkpoint-2")
    start, tuned, end = (load_file(f"{path}/model.safetensors") for path in (kept.path, tuned, trained))
    assert start.keys() == tuned.keys()
    assert all(torch.allclose(tuned[name], start[name], atol=1e-6) for name in start)  # fine-tuned from step 2
    assert not all(torch.allclose(end[name], start[name], atol=1e-6) for name in start)  # not from the end
