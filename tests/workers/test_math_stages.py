"""The math setting through the runner on the embedded store: math RL with its decontamination on record, code SFT,
benchmark evaluations (bench/… metrics, a samples artifact, provenance; a local multiple-choice task folder beside a
shipped task; code sets scored by EvalPlus's evaluator or their tests, the record naming which), and the toy math
pipeline evaluated before and after the code SFT (docs/method.md §3)."""

from __future__ import annotations

import json
import uuid
from importlib.util import find_spec
from pathlib import Path

import pytest
from sqlalchemy import select

from store.db import session_scope
from store.metrics import record_artifact
from store.models import Artifact, Event, Run, RunKind, RunStatus
from store.queries import create_pipeline
from store.specs import EvaluateSpec, FinetuneSpec, PipelineSpec, SpecError, TrainSpec, check_runnable
from testkit.service import get_run, steps_by_key, submit
from workers import runner

pytestmark = pytest.mark.slow

TOY_BENCH = {"benchmarks": ["toy_arith", "toy_humaneval"], "limit": 3, "max_new_tokens": 8, "backend": "hf"}
TEST_TASKS = Path(__file__).parents[1] / "data" / "lm_eval_tasks"
"""lm-eval task folders shipped with the tests (toy_choice: multiple choice), given to jobs by their paths."""


def events(engine, run_id) -> list[Event]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Event).where(Event.run_id == run_id).order_by(Event.id)))


def artifacts(engine, run_id, kind: str) -> list[Artifact]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Artifact).where(Artifact.run_id == run_id, Artifact.kind == kind)))


def finished_run(engine, model: Path) -> uuid.UUID:
    """A succeeded train run whose final model is `model` (what an evaluation starts from), without training."""
    with session_scope(engine) as session:
        run = Run(kind=RunKind.train, status=RunStatus.succeeded, spec=TrainSpec().model_dump(mode="json"))
        session.add(run)
        session.flush()
        record_artifact(session, run.id, "model", str(model), 1, "", 1)
        return run.id


def assert_benchmarked(engine, run_id) -> None:
    """toy_arith and toy_humaneval metrics at step 0, their samples as an artifact, their provenance as an event."""
    steps = steps_by_key(engine, run_id)
    bench = {key for key in steps if key.startswith("bench/")}
    assert {"bench/toy_arith/exact_match/last_number", "bench/toy_humaneval/pass@1"} <= bench
    assert "bench/toy_arith/exact_match/last_number_stderr" in bench
    assert all(steps[key] == [0] for key in bench)
    (samples,) = artifacts(engine, run_id, "benchmark_samples")
    with open(samples.path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert {(row["suite"], row["task"]) for row in rows} == {("lm-eval", "toy_arith"), ("evalplus", "toy_humaneval")}
    assert len(rows) == 6 and samples.step == 0 and len(samples.sha256) == 64  # limit 3 of each
    (event,) = [e for e in events(engine, run_id) if e.message.startswith("benchmarks: ")]
    record = {entry["suite"]: entry for entry in event.data["benchmarks"]}
    assert record["lm-eval"]["task_versions"]["toy_arith"] and record["lm-eval"]["dataset_hashes"]["toy_arith"]
    assert record["lm-eval"]["generation"]["offline"] is True  # decided: toy_arith's data is local
    assert (
        record["evalplus"]["generation"]["max_new_tokens"] == 8
        and record["evalplus"]["generation"]["do_sample"] is False
    )
    # toy_humaneval carries EvalPlus's fields: its evaluator scores it where the bench-eval extra is installed
    assert record["evalplus"]["scorer"].startswith("evalplus " if find_spec("evalplus") else "frpo test-code ")


def test_math_rl_records_its_reward_and_decontamination(tmp_path, sqlite_engine, settings):
    problems = [
        {"problem": f"What is ${a} + {b}$?", "solution": f"${a} + {b} = \\boxed{{{a + b}}}$", "level": "Level 3"}
        for a in range(4)
        for b in range(4)
    ]
    models = settings.model_roots[0]  # where a spec may name files: <data dir>/models by default
    models.mkdir(parents=True, exist_ok=True)
    source, reference = models / "math_train.jsonl", models / "math500.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in problems))
    # the benchmark holds two of the training problems, written differently
    reference.write_text(json.dumps({"problem": "What is $1+2$ ?"}) + "\n" + json.dumps({"problem": "What is 3 + 3?"}))
    spec = TrainSpec(
        dataset=str(source),
        rewards=["math"],
        decontaminate=str(reference),
        max_steps=2,
        save_steps=2,
        per_device_train_batch_size=16,
        max_completion_length=12,
    )
    run = submit(sqlite_engine, spec, settings)  # the files lie under the model root (the data folder)
    assert runner.execute(run.id, settings, sqlite_engine) == "succeeded"
    assert steps_by_key(sqlite_engine, run.id)["rewards/math/mean"] == [1, 2]
    (data,) = [e for e in events(sqlite_engine, run.id) if e.message.startswith("data: ")]
    assert data.data == {"rows": 14, "decontaminated_against": str(reference), "removed": 2}
    assert get_run(sqlite_engine, run.id).tags["decontaminated"] == 2
    assert any(e.message.startswith("rewards: math = math-verify@") for e in events(sqlite_engine, run.id))


def test_code_sft_then_a_benchmark_evaluation(sqlite_engine, settings):
    sft = submit(sqlite_engine, FinetuneSpec(preset="toy-code-sft", model="tiny", max_steps=3, save_steps=3))
    assert runner.execute(sft.id, settings, sqlite_engine) == "succeeded"
    assert steps_by_key(sqlite_engine, sft.id)["loss"] == [1, 2, 3]
    assert get_run(sqlite_engine, sft.id).tags["finetune_preset"] == "toy-code-sft"
    assert artifacts(sqlite_engine, sft.id, "model")  # the LoRA adapter merged: a plain model

    evaluation = submit(sqlite_engine, EvaluateSpec(run_id=sft.id, **TOY_BENCH), settings)
    assert evaluation.tags["benchmarks"] == ["toy_arith", "toy_humaneval"]
    assert runner.execute(evaluation.id, settings, sqlite_engine) == "succeeded"
    assert_benchmarked(sqlite_engine, evaluation.id)
    assert not any(key.startswith("eval/") for key in steps_by_key(sqlite_engine, evaluation.id))  # safety off


def test_an_adapter_is_merged_before_benchmarks_and_the_safety_evaluation(tmp_path, sqlite_engine, settings):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from frpo_core.tiny import build_tiny_model

    base = build_tiny_model(tmp_path / "tiny")
    adapter = tmp_path / "adapter"
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora).save_pretrained(adapter)
    AutoTokenizer.from_pretrained(base).save_pretrained(adapter)
    trained_id = finished_run(sqlite_engine, adapter)  # a finished run whose final model is an adapter
    small_eval = {"n_harmful": 2, "n_harmless": 2, "max_new_tokens": 4}
    spec = EvaluateSpec(run_id=trained_id, benchmarks=["toy_arith"], limit=2, safety=True, eval=small_eval)
    evaluation = submit(sqlite_engine, spec)
    assert runner.execute(evaluation.id, settings, sqlite_engine) == "succeeded"
    steps = steps_by_key(sqlite_engine, evaluation.id)
    assert steps["bench/toy_arith/exact_match/last_number"] == [0] and steps["eval/refusal_rate"] == [0]
    assert any(e.message.startswith("merged the LoRA adapter") for e in events(sqlite_engine, evaluation.id))


def test_a_local_multiple_choice_task_folder_beside_a_shipped_task(tmp_path, sqlite_engine, settings):
    from frpo_core.tiny import build_tiny_model

    trained_id = finished_run(sqlite_engine, build_tiny_model(tmp_path / "tiny"))
    folder = str(TEST_TASKS / "toy_choice")
    spec = EvaluateSpec(run_id=trained_id, benchmarks=[folder, "toy_arith"], limit=3, max_new_tokens=8, backend="hf")
    with pytest.raises(SpecError) as refused:  # a local folder must lie under a model root
        check_runnable(spec, settings)
    assert refused.value.field == "benchmarks.0"
    allowed = settings.model_copy(update={"model_roots": [*settings.model_roots, TEST_TASKS.resolve()]})
    evaluation = submit(sqlite_engine, spec, allowed)
    assert runner.execute(evaluation.id, allowed, sqlite_engine) == "succeeded"
    steps = steps_by_key(sqlite_engine, evaluation.id)
    expected = {
        *("bench/toy_choice/acc", "bench/toy_choice/acc_norm", "bench/toy_arith/exact_match/last_number"),
        *("bench/toy_choice/acc_stderr", "bench/toy_choice/acc_norm_stderr"),
    }
    assert expected <= set(steps) and all(steps[key] == [0] for key in expected)
    (samples,) = artifacts(sqlite_engine, evaluation.id, "benchmark_samples")
    with open(samples.path, encoding="utf-8") as handle:
        tasks = [json.loads(line)["task"] for line in handle]
    assert sorted(tasks) == ["toy_arith"] * 3 + ["toy_choice"] * 3  # limit 3 of each


SMALL_EVALPLUS_SET = [  # HumanEval-style rows with EvalPlus's fields: its evaluator runs the canonical solution on
    # base_input and plus_input for the expected outputs
    {
        "task_id": "Small/0",
        "prompt": 'def triple(x: int) -> int:\n    """Three times x."""\n',
        "entry_point": "triple",
        "canonical_solution": "    return 3 * x\n",
        "test": "def check(candidate):\n    assert candidate(1) == 3\n",
        "base_input": [[1], [2]],
        "plus_input": [[-4], [10**6]],
        "atol": 0,
    },
    {
        "task_id": "Small/1",
        "prompt": 'def halve(x: float) -> float:\n    """Half of x."""\n',
        "entry_point": "halve",
        "canonical_solution": "    return x / 2\n",
        "test": "def check(candidate):\n    assert candidate(1.0) == 0.5\n",
        "base_input": [[1.0]],
        "plus_input": [[-3.0], [1e-9]],
        "atol": 1e-9,
    },
]


def test_an_evalplus_format_code_set_is_scored_by_evalplus_and_a_plain_one_by_its_tests(
    tmp_path, sqlite_engine, settings
):
    pytest.importorskip("evalplus.eval", reason="EvalPlus is in the bench-eval extra")
    from frpo_core.tiny import build_tiny_model

    models = settings.model_roots[0]  # where a spec may name files: <data dir>/models by default
    models.mkdir(parents=True, exist_ok=True)
    evalplus_set, plain_set = models / "evalplus_set.jsonl", models / "plain_set.jsonl"
    evalplus_set.write_text("".join(json.dumps(row) + "\n" for row in SMALL_EVALPLUS_SET))
    plain_fields = ("task_id", "prompt", "entry_point", "test")
    plain_set.write_text("".join(json.dumps({k: row[k] for k in plain_fields}) + "\n" for row in SMALL_EVALPLUS_SET))
    trained_id = finished_run(sqlite_engine, build_tiny_model(tmp_path / "tiny"))
    spec = EvaluateSpec(run_id=trained_id, benchmarks=[str(evalplus_set), str(plain_set)], max_new_tokens=8)
    evaluation = submit(sqlite_engine, spec, settings)  # the files lie under the model root (the data folder)
    assert runner.execute(evaluation.id, settings, sqlite_engine) == "succeeded"

    steps = steps_by_key(sqlite_engine, evaluation.id)
    assert steps["bench/evalplus_set/pass@1"] == steps["bench/plain_set/pass@1"] == [0]
    (event,) = [e for e in events(sqlite_engine, evaluation.id) if e.message.startswith("benchmarks: ")]
    scorers = {next(iter(entry["n_samples"])): entry["scorer"] for entry in event.data["benchmarks"]}
    assert scorers["evalplus_set"].startswith("evalplus 0.3.1 untrusted_check in ")
    assert scorers["plain_set"].startswith("frpo test-code in ")
    assert f"scored by {scorers['evalplus_set']}" in event.message
    (samples,) = artifacts(sqlite_engine, evaluation.id, "benchmark_samples")
    with open(samples.path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    judged = [row for row in rows if row["task"] == "evalplus_set"]
    assert len(judged) == 2 and all({"base", "plus", "passed"} <= set(row) for row in judged)

    refused = submit(sqlite_engine, spec.model_copy(update={"benchmarks": [str(plain_set)], "code_scorer": "evalplus"}))
    assert runner.execute(refused.id, settings, sqlite_engine) == "failed"  # before the model loads
    assert "lacks EvalPlus's fields" in get_run(sqlite_engine, refused.id).error


def test_the_toy_math_pipeline_is_benchmarked_before_and_after_code_sft(sqlite_engine, settings):
    warm = submit(sqlite_engine, FinetuneSpec(preset="toy-math-warm-start", max_steps=10))
    assert runner.execute(warm.id, settings, sqlite_engine) == "succeeded"
    spec = PipelineSpec.model_validate(
        {
            "preset": "toy-math-pipeline",
            "train": {"parent_id": str(warm.id), "max_steps": 2, "save_steps": 2, "per_device_train_batch_size": 16},
            "finetune": {"max_steps": 2},
            "evaluation": {"limit": 3, "max_new_tokens": 8},
        }
    )
    check_runnable(spec, settings)
    with session_scope(sqlite_engine) as session:
        train, finetune, after, before = (run.id for run in create_pipeline(session, spec))
    sent: list = []
    assert runner.execute(train, settings, sqlite_engine, send=lambda *a: sent.append(a)) == "succeeded"
    assert sorted(sent) == sorted([(finetune, "cpu"), (before, "cpu")])  # both children of the trained run
    assert steps_by_key(sqlite_engine, train)["rewards/math/mean"] == [1, 2]
    assert runner.execute(before, settings, sqlite_engine) == "succeeded"
    assert runner.execute(finetune, settings, sqlite_engine, send=lambda *a: sent.append(a)) == "succeeded"
    assert sent[-1] == (after, "cpu")
    assert runner.execute(after, settings, sqlite_engine) == "succeeded"

    for run_id, when, parent in ((before, "before_finetune", train), (after, "after_finetune", finetune)):
        assert_benchmarked(sqlite_engine, run_id)
        run = get_run(sqlite_engine, run_id)
        assert run.parent_id == parent and run.tags["evaluates"] == when and run.tags["pipeline"] == str(train)
        assert run.tags["pipeline_preset"] == "toy-math-pipeline" and run.tags["preset"] == "toy-math"
