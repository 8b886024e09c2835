"""The safety pipeline on a real chat model the project did not make (SmolLM2-135M-Instruct, from a PyPI package's
GGUF file: testkit.outside_model), through the runner on the embedded store, on prompts in the authors' formats.

FRPO RL (a few steps of short completions) -> downstream SFT -> evaluation, plus downstream RL of the RL policy:
every stage succeeds, refusal and KL points are stored, the long prompt is cut to `max_prompt_length` and counted,
and SFT trains on the completion although the model's chat template has no `{% generation %}` markers. Prints
each stage's per-step time and its training process's peak memory (RSS)."""

from __future__ import annotations

import statistics
import time

import pytest
from sqlalchemy import select

from store.db import session_scope
from store.models import Event, MetricPoint
from store.queries import create_pipeline
from store.settings import Settings
from store.specs import FinetuneSpec, PipelineSpec, TrainSpec, check_runnable
from testkit.outside_model import MODEL_NAME, outside_model, watch_peak_rss, write_authors_formats
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
