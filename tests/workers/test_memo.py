"""Evaluations a sweep would repeat, computed once (workers.memo): RL runs from the shipped warm start share its
step-0 evaluation, and fine-tuning's step 0 is the RL run's final evaluation, copied with an event; a fresh
evaluation of the saved model agrees with both."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from store import queries
from store.db import session_scope
from store.models import EvalSample, Event, MetricPoint
from store.queries import authenticate, create_api_key
from store.specs import FinetuneSpec, TrainSpec
from testkit.service import submit
from workers import runner

pytestmark = pytest.mark.slow

# sampled answers as long as fine-tuning's greedy ones, so RL's end and fine-tuning's start decode alike
EVAL = {"n_harmful": 4, "n_harmless": 4, "every": 2, "max_new_tokens": 8, "samples": 2, "sample_length": 8}
REFUSALS = ("eval/refusal_rate", "eval/refusal_rate_normal", "eval/refusal_prob", "eval/harmfulness")
KLS = ("eval/kl_safety", "eval/kl_normal", "eval/kl_safety_sampled", "eval/kl_normal_sampled")


def metrics_at(engine, run_id, step) -> dict[str, float]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(MetricPoint.key, MetricPoint.value).where(MetricPoint.run_id == run_id, MetricPoint.step == step)
        )
        return {key: value for key, value in rows if key.startswith("eval/")}


def last_step(engine, run_id) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.max(MetricPoint.step)).where(MetricPoint.run_id == run_id))


def answers(engine, run_id, step) -> list[tuple]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(EvalSample)
            .where(EvalSample.run_id == run_id, EvalSample.step == step)
            .order_by(EvalSample.prompt_set, EvalSample.decoding, EvalSample.prompt_id, EvalSample.sample_index)
        )
        return [(s.prompt_set, s.decoding, s.prompt_id, s.sample_index, s.answer, s.verdict, s.kl) for s in rows]


def reuse_events(engine, run_id) -> list[Event]:
    with session_scope(engine) as session:
        query = select(Event).where(Event.run_id == run_id, Event.message.contains("evaluation reused"))
        return list(session.scalars(query))


def test_a_sweeps_shared_evaluations_are_computed_once_and_agree_with_a_fresh_one(sqlite_engine, settings):
    def train(seed: int):
        spec = TrainSpec(preset="toy-safety", max_steps=2, save_steps=2, per_device_train_batch_size=16, seed=seed)
        run = submit(sqlite_engine, spec.model_copy(update={"eval": spec.eval.model_copy(update=EVAL)}))
        assert runner.execute(run.id, settings, sqlite_engine) == "succeeded"
        return run.id

    first, second = train(0), train(1)  # both from the shipped warm start (toy-safety's model)
    assert reuse_events(sqlite_engine, first) == []  # the first evaluates its start
    (event,) = reuse_events(sqlite_engine, second)
    assert event.data["reused_from"] == str(first) and event.data["reused_step"] == 0 and event.data["reuse"] == "same"
    assert metrics_at(sqlite_engine, second, 0) == metrics_at(sqlite_engine, first, 0)
    assert answers(sqlite_engine, second, 0) == answers(sqlite_engine, first, 0) != []

    finetune = submit(sqlite_engine, FinetuneSpec(preset="toy-benign-sft", parent_id=first, max_steps=2, eval=EVAL))
    assert runner.execute(finetune.id, settings, sqlite_engine) == "succeeded"
    end = last_step(sqlite_engine, first)
    (event,) = reuse_events(sqlite_engine, finetune.id)
    assert event.data["reused_from"] == str(first) and event.data["reused_step"] == end
    assert event.data["reuse"] == "own reference" and "every KL 0" in event.message
    start, rl_end = metrics_at(sqlite_engine, finetune.id, 0), metrics_at(sqlite_engine, first, end)
    assert {key: start[key] for key in REFUSALS} == {key: rl_end[key] for key in REFUSALS}
    assert all(start[key] == 0.0 for key in KLS) and rl_end["eval/kl_safety"] > 0  # RL's KL was to the warm start
    assert [row[:6] for row in answers(sqlite_engine, finetune.id, 0)] == [
        row[:6] for row in answers(sqlite_engine, first, end)
    ]
    assert {row[6] for row in answers(sqlite_engine, finetune.id, 0)} == {0.0}

    # the same fine-tuning keeping prompts as hashes is another memo key: it evaluates its step 0 itself, and
    # measures exactly what the reuse copied
    hashed = {**EVAL, "prompt_texts": "hash"}
    fresh = submit(sqlite_engine, FinetuneSpec(preset="toy-benign-sft", parent_id=first, max_steps=2, eval=hashed))
    assert runner.execute(fresh.id, settings, sqlite_engine) == "succeeded"
    assert reuse_events(sqlite_engine, fresh.id) == []
    measured = metrics_at(sqlite_engine, fresh.id, 0)
    assert {key: measured[key] for key in (*REFUSALS, *KLS)} == {key: start[key] for key in (*REFUSALS, *KLS)}


def test_an_evaluation_is_reused_only_from_runs_of_the_same_owner(sqlite_engine, settings):
    spec = TrainSpec(preset="toy-safety", max_steps=1, save_steps=1, per_device_train_batch_size=16)
    spec = spec.model_copy(update={"eval": spec.eval.model_copy(update=EVAL)})
    with session_scope(sqlite_engine) as session:
        keys = [authenticate(session, create_api_key(session, name, "submit")).id for name in ("alice", "bob")]

    def train(owner: int) -> str:
        with session_scope(sqlite_engine) as session:
            run_id = queries.create_run(session, spec, owner_key_id=owner).id
        assert runner.execute(run_id, settings, sqlite_engine) == "succeeded"
        return run_id

    alice, bob, alice_again = train(keys[0]), train(keys[1]), train(keys[0])
    assert reuse_events(sqlite_engine, bob) == []  # bob's run may not learn alice's run id from an event
    (event,) = reuse_events(sqlite_engine, alice_again)
    assert event.data["reused_from"] == str(alice)
