"""The GPU path from spec to processes: the training child's command line (plain, or `accelerate launch` with the
shipped config) for RL and SFT jobs, the spec → RLJob / SFTJob → trainer-config translation, and real 2-process
launches on the CPU (gloo)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
import yaml

from store.specs import EvaluateSpec, FinetuneSpec, TrainSpec
from workers.launch import (
    ACCELERATE_CONFIGS,
    accelerate_arguments,
    child_command,
    is_main_process,
    needs_launcher,
)
from workers.stages import rl_job, sft_job

RUN = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")


def test_a_one_gpu_job_runs_its_child_directly(tmp_path):
    for spec in (TrainSpec(), TrainSpec(queue="gpu", gpu={"use_vllm": True}), EvaluateSpec(run_id=RUN)):
        command = child_command(RUN, spec, tmp_path, None, parent_pid=42)
        assert command == [
            sys.executable,
            *("-m", "workers.runner", "--train", str(RUN), "--output-root", str(tmp_path), "--parent-pid", "42"),
        ]
    resumed = child_command(RUN, TrainSpec(), tmp_path, tmp_path / "checkpoint-4", parent_pid=42)
    assert resumed[-4:] == ["--resume", str(tmp_path / "checkpoint-4"), "--parent-pid", "42"]


@pytest.mark.parametrize("distributed", ["ddp", "zero2", "zero3"])
def test_several_gpus_run_under_accelerate_launch_with_the_shipped_config(tmp_path, distributed):
    spec = TrainSpec(queue="gpu", gpu={"num_gpus": 4, "distributed": distributed})
    command = child_command(RUN, spec, tmp_path, tmp_path / "checkpoint-2", parent_pid=42, port=29123)
    assert command[:6] == [sys.executable, "-m", "workers.launch", "--parent-pid", "42", "--"]
    launch = command[6:]
    assert launch[: launch.index("-m")] == [
        *("--config_file", str(ACCELERATE_CONFIGS[distributed]), "--num_processes", "4"),
        *("--main_process_port", "29123", "--mixed_precision", "bf16"),
    ]
    # the ranks run the training child, without --parent-pid: each dies with the launcher that started it
    assert launch[launch.index("-m") :] == [
        *("-m", "workers.runner", "--train", str(RUN), "--output-root", str(tmp_path)),
        *("--resume", str(tmp_path / "checkpoint-2")),
    ]
    assert needs_launcher(spec.gpu) and not needs_launcher(TrainSpec(queue="gpu", gpu={}).gpu)
    assert needs_launcher(TrainSpec(queue="gpu", gpu={"distributed": "zero3"}).gpu)  # DeepSpeed needs its config


def test_a_finetune_job_on_several_gpus_runs_under_accelerate_launch_too(tmp_path):
    direct = child_command(RUN, FinetuneSpec(preset="code-sft", parent_id=RUN), tmp_path, None, parent_pid=42)
    assert direct[1:3] == ["-m", "workers.runner"] and direct[-2:] == ["--parent-pid", "42"]  # one GPU: no launcher
    spec = FinetuneSpec(preset="code-sft", parent_id=RUN, gpu={"num_gpus": 8, "distributed": "zero2"})
    assert spec.gpu.bf16 and spec.gpu.gradient_checkpointing  # the preset's, under the spec's processes
    command = child_command(RUN, spec, tmp_path, None, parent_pid=42, port=29123)
    assert command[:6] == [sys.executable, "-m", "workers.launch", "--parent-pid", "42", "--"]
    launch = command[6:]
    assert launch == [
        *("--config_file", str(ACCELERATE_CONFIGS["zero2"]), "--num_processes", "8"),
        *("--main_process_port", "29123", "--mixed_precision", "bf16"),
        *("-m", "workers.runner", "--train", str(RUN), "--output-root", str(tmp_path)),
    ]


def test_the_code_sft_preset_translates_into_the_sft_config(tmp_path):
    from frpo_core.jobs.gpu import GpuBaseOptions
    from frpo_core.jobs.sft import sft_config

    spec = FinetuneSpec(preset="code-sft", parent_id=RUN, gpu={"num_gpus": 8}, gradient_accumulation_steps=1)
    job = sft_job(spec, "/models/math-rl", tmp_path)
    assert job.gpu == GpuBaseOptions(attn_implementation="auto", bf16=True, gradient_checkpointing=True)
    assert job.lora and (job.lora_r, job.lora_alpha, job.lora_dropout) == (16, 32, 0.05) and job.dataset_limit == 50_000
    config = sft_config(job)
    assert config.bf16 and config.gradient_checkpointing and config.max_grad_norm == 0.3
    assert config.model_init_kwargs["dtype"] == "bfloat16"
    assert config.model_init_kwargs["attn_implementation"] in ("flash_attention_2", "sdpa")
    expected = (5e-5, "cosine", 0.04, 4096, 8, 1)
    assert (
        config.learning_rate,
        config.lr_scheduler_type,
        config.weight_decay,
        config.max_length,
        config.per_device_train_batch_size,
        config.gradient_accumulation_steps,
    ) == expected
    assert "num_gpus" not in vars(job.gpu) and config.assistant_only_loss  # processes: the launcher's
    plain = sft_config(sft_job(FinetuneSpec(model="tiny"), "/models/tiny", tmp_path))  # no gpu: as before
    assert plain.model_init_kwargs == {"dtype": "float32"} and plain.max_grad_norm == 1.0


def test_the_shipped_accelerate_configs():
    kinds = {name: yaml.safe_load(Path(path).read_text()) for name, path in ACCELERATE_CONFIGS.items()}
    assert kinds["ddp"]["distributed_type"] == "MULTI_GPU"
    assert kinds["zero2"]["distributed_type"] == kinds["zero3"]["distributed_type"] == "DEEPSPEED"
    assert kinds["zero2"]["deepspeed_config"]["zero_stage"] == 2 and kinds["zero3"]["deepspeed_config"]["zero_stage"]
    assert kinds["zero3"]["deepspeed_config"]["zero3_save_16bit_model"]
    assert all(config["num_machines"] == 1 for config in kinds.values())


def test_without_cuda_the_launch_drops_mixed_precision():
    arguments = ["--num_processes", "2", "--mixed_precision", "bf16", "-m", "workers.runner", "--mixed_precision"]
    assert accelerate_arguments(arguments, cuda=True) == arguments
    assert accelerate_arguments(arguments, cuda=False) == [
        *("--num_processes", "2", "--mixed_precision", "no", "-m", "workers.runner", "--mixed_precision"),
    ]


def test_only_rank_zero_writes(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert is_main_process()
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()


def test_the_math_preset_translates_into_the_trainer_config(tmp_path):
    from frpo_core.jobs.rl import rl_config, rl_options

    spec = TrainSpec(preset="math-qwen2.5-math-7b", gpu={"num_gpus": 8, "distributed": "zero2", "use_vllm": True})
    job = rl_job(spec, "/models/qwen", tmp_path)
    assert job.lora and (job.lora_r, job.lora_alpha) == (64, 128) and job.math_exclude == "auto"
    options = rl_options(job)
    assert options["use_vllm"] and options["vllm_mode"] == "colocate" and options["vllm_gpu_memory_utilization"] == 0.3
    assert options["bf16"] and options["gradient_checkpointing"]
    assert options["model_init_kwargs"]["dtype"] == "bfloat16"
    assert options["model_init_kwargs"]["attn_implementation"] in ("flash_attention_2", "sdpa")
    assert "num_gpus" not in options and "distributed" not in options  # the launcher's, not the config's
    expected = {
        "gradient_accumulation_steps": 16,
        "warmup_steps": 0.1,
        "max_grad_norm": 0.5,
        "weight_decay": 0.0,
        "top_p": 1.0,
        "learning_rate": 6e-6,
        "beta": 1e-4,
        "per_device_train_batch_size": 32,
        "max_completion_length": 2048,
    }
    assert {key: options[key] for key in expected} == expected
    config = rl_config(job)  # builds without vLLM installed: only the trainer imports it
    assert config.use_vllm and config.max_grad_norm == 0.5 and config.gradient_accumulation_steps == 16
    assert config.steps_per_generation == 1  # FRPO: groups stay whole inside each micro-batch (docs/method.md §6.1)


@pytest.mark.slow
def test_a_two_process_job_through_the_runner_writes_once(tmp_path, sqlite_url, sqlite_engine):
    """`gpu.num_gpus: 2` on a machine without CUDA: accelerate launches two ranks that train on the CPU with gloo;
    only rank 0 writes metrics, events and artifacts, and no process outlives the job."""
    from sqlalchemy import select

    from store.db import session_scope
    from store.models import Artifact, Event
    from store.queries import create_run
    from store.settings import Settings
    from testkit.service import steps_by_key, training_processes
    from workers import runner

    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, lease_seconds=30, heartbeat_seconds=1)
    spec = TrainSpec(
        queue="gpu",  # as the API would require; the runner itself does not look at the queue
        gpu={"num_gpus": 2, "bf16": False},
        max_steps=3,
        save_steps=2,
        per_device_train_batch_size=8,
        max_completion_length=8,
    )
    with session_scope(sqlite_engine) as session:
        run_id = create_run(session, spec).id
    assert runner.execute(run_id, settings, sqlite_engine) == "succeeded"
    assert steps_by_key(sqlite_engine, run_id)["loss"] == [1, 2, 3]
    with session_scope(sqlite_engine) as session:
        messages = list(session.scalars(select(Event.message).where(Event.run_id == run_id)))
        kinds = list(session.scalars(select(Artifact.kind).where(Artifact.run_id == run_id).order_by(Artifact.id)))
    assert "training on 2 processes (accelerate launch)" in messages
    assert sum(m.startswith("rewards: ") for m in messages) == 1  # rank 1 wrote nothing
    assert kinds == ["checkpoint", "checkpoint", "model"]
    assert training_processes(run_id) == []


@pytest.mark.slow
def test_a_two_process_sft_through_the_runner_writes_once(tmp_path, sqlite_url, sqlite_engine):
    """A finetune job with `gpu.num_gpus: 2`, without CUDA: two ranks fine-tune on the CPU with gloo (data parallel);
    rank 0 alone streams the metrics and records the final model."""
    from sqlalchemy import select

    from store.db import session_scope
    from store.models import Artifact, Event
    from store.queries import create_run
    from store.settings import Settings
    from testkit.service import steps_by_key, training_processes
    from workers import runner

    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, lease_seconds=30, heartbeat_seconds=1)
    spec = FinetuneSpec(
        model="tiny", queue="gpu", gpu={"num_gpus": 2, "bf16": False}, max_steps=2, max_length=64, eval=None
    )
    with session_scope(sqlite_engine) as session:
        run_id = create_run(session, spec).id
    assert runner.execute(run_id, settings, sqlite_engine) == "succeeded"
    assert steps_by_key(sqlite_engine, run_id)["loss"] == [1, 2]
    with session_scope(sqlite_engine) as session:
        messages = list(session.scalars(select(Event.message).where(Event.run_id == run_id)))
        kinds = list(session.scalars(select(Artifact.kind).where(Artifact.run_id == run_id).order_by(Artifact.id)))
    assert messages.count("training on 2 processes (accelerate launch)") == 1
    assert kinds == ["checkpoint", "model"]  # the end-of-training checkpoint and the final model, once each
    assert training_processes(run_id) == []
