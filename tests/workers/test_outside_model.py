"""The safety and math pipelines on a real chat model the project did not make (SmolLM2-135M-Instruct, from a PyPI
package's GGUF file: testkit.outside_model), through the runner on the embedded store, on data in the authors' formats.

Safety: FRPO RL (a few steps of short completions) -> downstream SFT -> evaluation, plus downstream RL of the RL
policy: every stage succeeds, refusal and KL points are stored, the long prompt is cut to `max_prompt_length` and
counted, and SFT trains on the completion although the model's chat template has no `{% generation %}` markers.
Math: math RL (LoRA, on competition_math-layout problems decontaminated against a MATH500-layout file) -> code SFT
(LoRA, OpenCodeInstruct layout) -> the shipped benchmarks before and after the SFT, offline. Prints each stage's
per-step time and its process's peak memory (RSS)."""

from __future__ import annotations

import statistics
import time

import pytest
from sqlalchemy import select

from store.db import session_scope
from store.models import Event, MetricPoint
from store.presets import MATH_SYSTEM_PROMPT
from store.queries import create_pipeline
from store.settings import Settings
from store.specs import FinetuneSpec, PipelineSpec, TrainSpec, check_runnable
from testkit.outside_model import (
    HUB_ID,
    MODEL_NAME,
    outside_model,
    place_in_hf_cache,
    watch_peak_rss,
    write_authors_formats,
    write_math_formats,
)
from testkit.service import get_run, steps_by_key, submit
from workers import runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_PROMPT_LENGTH = 64  # the long prompt in each file is ~500 tokens; the others fit
NO_CHECKPOINT = 10  # past max_steps: no intermediate checkpoint (each would write 1.6 GB of weights and optimiser)


@pytest.fixture(scope="module")
def model_path():
    return outside_model()


@pytest.fixture
def outside_settings(tmp_path, sqlite_url, model_path):
    return Settings(
        data_dir=tmp_path,
        database_url=sqlite_url,
        model_roots=[tmp_path, model_path.parent],
        lease_seconds=30,
        heartbeat_seconds=2,
    )


def events(engine, run_id) -> list[str]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Event.message).where(Event.run_id == run_id).order_by(Event.id)))


def values(engine, run_id, key) -> dict[int, float]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(MetricPoint.step, MetricPoint.value).where(MetricPoint.run_id == run_id, MetricPoint.key == key)
        ).all()
    return dict(rows)


def run_stage(engine, settings, run_id, label: str, measures: list[str]) -> None:
    """Execute one stage, measuring its wall time and its training process's peak RSS; the log tail on failure."""
    started = time.monotonic()
    with watch_peak_rss(run_id) as memory:
        outcome = runner.execute(run_id, settings, engine, send=lambda *_: None)
    wall = time.monotonic() - started
    if outcome != "succeeded":
        log = settings.output_root / str(run_id) / "train.log"
        pytest.fail(f"{label} {outcome}:\n{log.read_text()[-4000:] if log.exists() else '(no log)'}")
    per_step = _per_step(engine, run_id)
    measures.append(f"{label}: {wall:.0f} s wall, {per_step}, peak RSS {memory['peak_mib']:.0f} MiB")


def _per_step(engine, run_id) -> str:
    """RL logs each step's time (generation and update, not the evaluation); SFT only its whole runtime."""
    step_times = list(values(engine, run_id, "step_time").values())
    if step_times:
        return f"{statistics.fmean(step_times):.1f} s/step"
    runtime, steps = values(engine, run_id, "train_runtime"), steps_by_key(engine, run_id).get("loss", [])
    if runtime and steps:
        return f"{sum(runtime.values()) / len(steps):.1f} s/step (in-loop evaluations included)"
    return "no training steps"


# Both RL stages, the pipeline's FRPO and the downstream GRPO: two steps of 4 completions of 8 tokens, no checkpoint.
SHORT_RL = dict(
    learning_rate=1e-5,
    max_steps=2,
    save_steps=NO_CHECKPOINT,
    num_generations=2,
    per_device_train_batch_size=4,
    max_completion_length=8,
    max_prompt_length=MAX_PROMPT_LENGTH,
)


def test_safety_pipeline_on_a_real_chat_model_from_the_registry(
    sqlite_engine, outside_settings, model_path, tmp_path, capsys
):
    parquet, jsonl = write_authors_formats(tmp_path / "prompts")
    evaluation = {
        "prompts": str(jsonl),
        "n_harmful": 2,
        "n_harmless": 2,
        "every": 2,
        "max_new_tokens": 8,
        "samples": 2,  # the sampled measures on a real model, kept cheap (8 a prompt made the test 8× slower)
        "max_prompt_length": MAX_PROMPT_LENGTH,
    }
    spec = PipelineSpec(
        train=TrainSpec(
            model=str(model_path),
            dataset=str(parquet),
            rewards=["safety", "helpfulness"],
            lamb=0.5,
            beta=0.01,
            **SHORT_RL,
            eval=evaluation,
        ),
        finetune={
            "dataset": "benign_sft",
            "dataset_limit": 16,
            "learning_rate": 1e-5,
            "max_steps": 2,
            "save_steps": NO_CHECKPOINT,
            "per_device_train_batch_size": 2,
            "max_length": 128,
            "eval": evaluation,
        },
    )
    check_runnable(spec, outside_settings)  # local model and prompt files under the server's model roots
    with session_scope(sqlite_engine) as session:
        train, finetune, evaluate = (run.id for run in create_pipeline(session, spec))
    measures: list[str] = [f"outside model: {MODEL_NAME}"]

    run_stage(sqlite_engine, outside_settings, train, "FRPO RL (4 completions of 8 tokens a step)", measures)
    steps = steps_by_key(sqlite_engine, train)
    assert steps["eval/refusal_rate"] == [0, 2] and steps["eval/kl_safety"] == [0, 2]
    assert values(sqlite_engine, train, "eval/kl_safety")[0] == pytest.approx(0.0, abs=1e-6)
    messages = events(sqlite_engine, train)
    bound = f"max_prompt_length = {MAX_PROMPT_LENGTH} tokens; 1 truncated from the left, 0 dropped"
    assert f"RL prompts: {bound}" in messages and f"evaluation prompts: {bound}" in messages

    run_stage(sqlite_engine, outside_settings, finetune, "downstream SFT (2 sequences of <= 128 tokens)", measures)
    steps = steps_by_key(sqlite_engine, finetune)
    assert steps["loss"] == [1, 2] and steps["eval/refusal_rate"] == [0, 2] and steps["eval/kl_safety"] == [0, 2]
    assert values(sqlite_engine, finetune, "eval/kl_safety")[2] > 0  # SFT moved the RL policy
    masking = [m for m in events(sqlite_engine, finetune) if m.startswith("sft masking: ")]
    assert masking and masking[0].startswith("sft masking: completion (the chat template has no")

    run_stage(sqlite_engine, outside_settings, evaluate, "evaluation", measures)
    steps = steps_by_key(sqlite_engine, evaluate)
    assert steps["eval/refusal_rate"] == [0] and steps["eval/kl_safety"] == [0]
    assert steps["eval/refusal_rate_normal"] == [0]

    downstream = FinetuneSpec(
        parent_id=train,
        mode="rl",
        dataset="toy_math",
        rewards=["math"],
        **SHORT_RL,
        eval=evaluation,
    )
    rl = submit(sqlite_engine, downstream, outside_settings).id
    run_stage(sqlite_engine, outside_settings, rl, "downstream RL (GRPO, 4 completions of 8 tokens a step)", measures)
    steps = steps_by_key(sqlite_engine, rl)
    assert steps["rewards/math/mean"] == [1, 2] and steps["eval/kl_safety"] == [0, 2]
    assert get_run(sqlite_engine, rl).progress == 1.0
    with capsys.disabled():  # in the test output even when pytest captures it
        print("\n" + "\n".join(measures))


@pytest.mark.timeout(1200)  # a training process on a shared 2-core machine, then one that fails early
def test_a_hub_id_loads_from_the_hugging_face_cache_offline_and_a_missing_one_says_what_to_do(
    sqlite_engine, outside_settings, model_path, tmp_path, monkeypatch, capsys
):
    place_in_hf_cache(model_path, tmp_path / "hf")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # the training child inherits the environment
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = FinetuneSpec(
        model=HUB_ID,
        dataset="benign_sft",
        dataset_limit=4,
        learning_rate=1e-5,
        max_steps=1,
        save_steps=NO_CHECKPOINT,
        per_device_train_batch_size=1,
        max_length=64,
        eval=None,
    )
    run = submit(sqlite_engine, spec, outside_settings)  # a hub id passes the server's checks
    measures: list[str] = []
    run_stage(sqlite_engine, outside_settings, run.id, f"SFT of {HUB_ID} from the cache (1 sequence)", measures)
    assert steps_by_key(sqlite_engine, run.id)["loss"] == [1]

    missing = "HuggingFaceTB/SmolLM2-360M-Instruct"
    absent = submit(sqlite_engine, spec.model_copy(update={"model": missing}), outside_settings)
    assert runner.execute(absent.id, outside_settings, sqlite_engine, send=lambda *_: None) == "failed"
    error = get_run(sqlite_engine, absent.id).error
    assert f"model {missing!r} is not in this worker's Hugging Face cache ({tmp_path / 'hf' / 'hub'})" in error
    assert "set HF_TOKEN" in error and f"pre-download it on a machine with access (hf download {missing})" in error
    with capsys.disabled():
        print("\n" + "\n".join(measures))


# The paper's math presets at one step each: math-qwen2.5-math-7b's RL (LoRA r64/α128, β 1e-4, lr 6e-6) and code-sft's
# SFT (LoRA r16/α32), then the shipped toy MATH500 (lm-eval) and toy HumanEval (EvalPlus-style) on two items each.
MATH_BENCHMARKS = ["toy_arith", "toy_humaneval"]


@pytest.mark.timeout(2700)  # four stages, each a process that loads torch and the model, on a shared 2-core machine
def test_math_pipeline_on_a_real_chat_model_benchmarked_before_and_after_code_sft(
    sqlite_engine, outside_settings, model_path, tmp_path, capsys
):
    problems, math500 = write_math_formats(tmp_path / "math")
    spec = PipelineSpec.model_validate(
        {
            "train": {
                "model": str(model_path),
                "dataset": str(problems),
                "decontaminate": str(math500),
                "rewards": ["math"],
                "lamb": 1.0,
                "beta": 1e-4,
                "lora": True,
                "lora_r": 64,
                "lora_alpha": 128,
                **SHORT_RL,
                "learning_rate": 6e-6,
                "max_steps": 1,
                "per_device_train_batch_size": 2,
                "max_completion_length": 16,
            },
            "finetune": {
                "preset": "code-sft",
                "dataset": "toy_code",
                "max_steps": 1,
                "save_steps": NO_CHECKPOINT,
                "per_device_train_batch_size": 2,
                "gradient_accumulation_steps": 1,
                "max_length": 256,
                "queue": "cpu",
                "gpu": None,
            },
            "evaluate_before": True,
            "evaluation": {
                "benchmarks": MATH_BENCHMARKS,
                "system_prompt": MATH_SYSTEM_PROMPT,
                "limit": 2,
                "max_new_tokens": 24,
                "backend": "hf",
            },
        }
    )
    check_runnable(spec, outside_settings)
    with session_scope(sqlite_engine) as session:
        train, finetune, after, before = (run.id for run in create_pipeline(session, spec))
    measures: list[str] = [f"outside model: {MODEL_NAME}"]

    run_stage(sqlite_engine, outside_settings, train, "math RL (LoRA, 1 step of 2 completions of 16 tokens)", measures)
    assert steps_by_key(sqlite_engine, train)["rewards/math/mean"] == [1]
    (data,) = [m for m in events(sqlite_engine, train) if m.startswith("data: ")]
    assert data == f"data: rows = 7, decontaminated_against = {math500}, removed = 1"  # 10: 2 at Level 1, 1 in MATH500
    assert get_run(sqlite_engine, train).tags["decontaminated"] == 1

    run_stage(sqlite_engine, outside_settings, before, "benchmarks before code SFT", measures)
    run_stage(
        sqlite_engine, outside_settings, finetune, "code SFT (LoRA, 1 step of 2 sequences of <= 256 tokens)", measures
    )
    assert steps_by_key(sqlite_engine, finetune)["loss"] == [1]
    run_stage(sqlite_engine, outside_settings, after, "benchmarks after code SFT", measures)

    for run_id in (before, after):
        steps = steps_by_key(sqlite_engine, run_id)
        expected = {"bench/toy_arith/exact_match/last_number", "bench/toy_humaneval/pass@1"}
        assert expected <= set(steps) and all(steps[key] == [0] for key in expected)
        scores = {key: values(sqlite_engine, run_id, key)[0] for key in expected}
        measures.append(f"{get_run(sqlite_engine, run_id).tags['evaluates']}: {scores}")
    with capsys.disabled():
        print("\n" + "\n".join(measures))
