"""The job contract: defaults, sweeps, and what the shape alone cannot check."""

from __future__ import annotations

import pydantic
import pytest

from store.settings import Settings
from store.specs import (
    JOB_SPEC,
    EvaluateSpec,
    FinetuneSpec,
    PipelineSpec,
    SpecError,
    SweepSpec,
    TrainSpec,
    check_runnable,
)

PARENT = "123e4567-e89b-12d3-a456-426614174000"


def test_smallest_submission_is_the_toy_task():
    spec = TrainSpec.model_validate({"kind": "train", "method": "grpo"})
    assert spec.model == "tiny" and spec.dataset == "toy" and spec.scale_rewards == "none"
    assert spec.tags()["method"] == "grpo" and spec.tags()["lamb"] is None
    assert TrainSpec.model_validate({"kind": "train", "method": "frpo", "lamb": 0.2}).tags()["lamb"] == 0.2


def test_prompts_are_bounded_at_the_authors_1024_tokens_unless_a_spec_says_otherwise():
    parent = "123e4567-e89b-12d3-a456-426614174000"
    train = TrainSpec(eval={})
    finetune = FinetuneSpec(parent_id=parent, mode="rl", max_prompt_length=None)
    assert train.max_prompt_length == train.eval.max_prompt_length == 1024
    assert train.overlong_prompts == "truncate" and finetune.max_prompt_length is None  # null: no bound
    assert EvaluateSpec(run_id=parent).eval.max_prompt_length == 1024
    assert FinetuneSpec(parent_id=parent).masking == "auto"
    for preset in ("safety-mistral-7b", "safety-qwen2.5-7b", "math-qwen2.5-math-7b"):
        assert TrainSpec(preset=preset, dataset="d.parquet").max_prompt_length == 1024


def test_job_kinds_and_the_default_kind():
    assert isinstance(JOB_SPEC.validate_python({"method": "frpo"}), TrainSpec)
    parent = "123e4567-e89b-12d3-a456-426614174000"
    finetune = JOB_SPEC.validate_python({"kind": "finetune", "parent_id": parent})
    assert isinstance(finetune, FinetuneSpec) and finetune.dataset == "benign_sft" and finetune.eval.judge
    with pytest.raises(pydantic.ValidationError, match="parent_id"):
        JOB_SPEC.validate_python({"kind": "finetune"})
    with pytest.raises(pydantic.ValidationError, match="ppo"):
        JOB_SPEC.validate_python({"kind": "ppo"})


@pytest.mark.parametrize(
    "body,field",
    [
        ({"lamb": 0}, "lamb"),
        ({"method": "ppo"}, "method"),
        ({"nope": 1}, "nope"),
        ({"per_device_train_batch_size": 12, "num_generations": 8}, "multiple of num_generations"),
        ({"trl": {"loss_type": "dapo"}}, "may not set"),
        ({"max_prompt_length": 8}, "max_prompt_length"),
        ({"overlong_prompts": "keep"}, "overlong_prompts"),
        ({"trl": {"max_prompt_length": 512}}, "may not set 'max_prompt_length': set the spec's own field"),
        ({"eval": {"max_prompt_length": 0}}, "eval.max_prompt_length"),
        ({"eval": {"samples": -1}}, "eval.samples"),
        ({"eval": {"temperature": 0}}, "eval.temperature"),
        ({"eval": {"sample_length": 0}}, "eval.sample_length"),
    ],
)
def test_bad_specs_name_the_field(body, field):
    with pytest.raises(pydantic.ValidationError, match=field):
        TrainSpec.model_validate(body)


def test_sweep_expands_the_grid_with_a_grpo_baseline_per_seed():
    sweep = SweepSpec.model_validate(
        {"name": "s", "base": {"max_steps": 5}, "grid": {"lamb": [0.5, 2], "seed": [0, 1]}}
    )
    points = sweep.points()
    frpo = sorted((p.lamb, p.seed) for p in points if p.method == "frpo")
    grpo = sorted(p.seed for p in points if p.method == "grpo")
    assert frpo == [(0.5, 0), (0.5, 1), (2.0, 0), (2.0, 1)] and grpo == [0, 1]
    assert all(p.max_steps == 5 for p in points)
    for grid, where in (({"seed": []}, "grid.seed"), ({"lamb": [1, -1]}, "grid.lamb.1"), ({}, "grid\n")):
        with pytest.raises(pydantic.ValidationError) as caught:
            SweepSpec.model_validate({"name": "s", "base": {}, "grid": grid})
        assert where in str(caught.value)


def test_a_sweep_runs_every_baseline_loss_type_it_names_at_every_budget():
    sweep = SweepSpec.model_validate(
        {
            "name": "s",
            "base": {"max_steps": 5},
            "grid": {"lamb": [0.5], "seed": [0, 1]},
            "baselines": ["grpo", "dr_grpo"],
            "grpo_budgets": {"max_steps": [5, 10]},
        }
    )
    points = sweep.points()
    for method in ("grpo", "dr_grpo"):
        assert sorted((p.max_steps, p.seed) for p in points if p.method == method) == [(5, 0), (5, 1), (10, 0), (10, 1)]
    assert len(points) == 2 + 8 == sweep.grid.size(2, sweep.grpo_budgets)
    with pytest.raises(pydantic.ValidationError, match="each loss type once"):
        SweepSpec.model_validate({"name": "s", "base": {}, "grid": {"seed": [0]}, "baselines": ["dapo", "dapo"]})
    with pytest.raises(pydantic.ValidationError, match="baselines.0"):
        SweepSpec.model_validate({"name": "s", "base": {}, "grid": {"seed": [0]}, "baselines": ["frpo"]})


def test_grpo_budgets_vary_the_knobs_where_grpo_settles_including_std_scaled_advantages():
    sweep = SweepSpec.model_validate(
        {
            "name": "s",
            "base": {"max_steps": 5},
            "grid": {"lamb": [0.5], "seed": [0]},
            "grpo_budgets": {"beta": [0.05, 0.0], "scale_rewards": ["none", "group"]},
        }
    )
    grpo = sorted((p.beta, p.scale_rewards) for p in sweep.points() if p.method == "grpo")
    assert grpo == [(0.0, "group"), (0.0, "none"), (0.05, "group"), (0.05, "none")]
    assert next(p for p in sweep.points() if p.method == "frpo").scale_rewards == "none"  # FRPO keeps raw advantages
    assert TrainSpec(scale_rewards="group").tags()["scale_rewards"] == "group"  # a budget part of the frontier
    with pytest.raises(pydantic.ValidationError, match="grpo_budgets.scale_rewards.0"):
        SweepSpec.model_validate(
            {"name": "s", "base": {}, "grid": {"seed": [0]}, "grpo_budgets": {"scale_rewards": ["std"]}}
        )


def _one_run_sweep(base: dict, budgets: dict | None = None) -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "name": "s",
            "base": base,
            "grid": {"lamb": [0.5], "seed": [0, 1]},
            "grpo_budgets": budgets or {"checkpoints": [60, 120, 180], "beta": [0.05, 0.0]},
        }
    )


SAFETY_PIPELINE = {  # the toy preset at a scale of its own, so that these numbers do not follow the demo's
    "kind": "pipeline",
    "train": {"preset": "toy-safety", "parent_id": PARENT, "max_steps": 120, "eval": {"every": 60}},
    "evaluate": False,
}


def test_checkpoints_run_grpo_once_per_remaining_point_to_the_largest_step_and_fine_tune_from_each():
    sweep = _one_run_sweep(SAFETY_PIPELINE)
    points = sweep.points()
    grpo = [p for p in points if p.train.method == "grpo"]
    assert sorted((p.train.beta, p.train.seed) for p in grpo) == [(0.0, 0), (0.0, 1), (0.05, 0), (0.05, 1)]
    assert all(p.train.max_steps == 180 and p.train.keep_checkpoints == [60, 120, 180] for p in grpo)
    assert all(p.finetune_at == [60, 120, 180] for p in grpo)
    assert [s.parent_step for s in grpo[0].finetune_specs(PARENT)] == [60, 120, 180]
    assert [s.seed for s in grpo[1].finetune_specs(PARENT)] == [grpo[1].train.seed] * 3  # the seed seeds each stage
    frpo = [p for p in points if p.train.method == "frpo"]
    assert all(p.finetune_at is None and p.train.keep_checkpoints is None and p.train.max_steps == 120 for p in frpo)
    assert sweep.grid.size(1, sweep.grpo_budgets) == len(points) == 2 + 4  # checkpoints add no runs
    train_only = _one_run_sweep({"preset": "toy-safety"}).points()
    assert {(p.method, p.max_steps, tuple(p.keep_checkpoints or ())) for p in train_only} == {
        ("frpo", 30, ()),  # the preset's own steps
        ("grpo", 180, (60, 120, 180)),
    }


def test_checkpoints_must_be_steps_the_grpo_run_evaluates_and_are_not_max_steps_too():
    with pytest.raises(pydantic.ValidationError, match=r"steps \[50\] are not evaluation steps.*eval.every = 60"):
        _one_run_sweep(SAFETY_PIPELINE, {"checkpoints": [50, 120]})
    with pytest.raises(pydantic.ValidationError, match="give the base's training spec an eval"):
        _one_run_sweep({"max_steps": 5}, {"checkpoints": [2, 4]})
    with pytest.raises(pydantic.ValidationError, match="give one of them"):
        _one_run_sweep(SAFETY_PIPELINE, {"checkpoints": [60], "max_steps": [60]})
    with pytest.raises(pydantic.ValidationError, match="evaluate_before evaluates final models only"):
        _one_run_sweep({**SAFETY_PIPELINE, "evaluate_before": True})
    assert _one_run_sweep(SAFETY_PIPELINE, {"checkpoints": [60, 90]}).points()  # the last step is the run's end


def test_a_pipeline_fine_tunes_from_each_kept_checkpoint_of_its_training_run():
    spec = PipelineSpec.model_validate({**SAFETY_PIPELINE, "finetune_at": [60, 120]})
    assert spec.train.keep_checkpoints == [60, 120]  # filled in: the training run keeps what is fine-tuned from
    assert [(str(s.parent_id), s.parent_step) for s in spec.finetune_specs(PARENT)] == [(PARENT, 60), (PARENT, 120)]
    refused = {
        "finetune_at: step 200 is past train.max_steps": {"finetune_at": [200]},
        "finetune_at: steps \\[30\\] are not evaluation steps": {"finetune_at": [30, 60]},
        "give train.eval": {"finetune_at": [15], "train": {"preset": "toy-safety", "eval": None}},
    }
    for message, fields in refused.items():
        with pytest.raises(pydantic.ValidationError, match=message):
            PipelineSpec.model_validate({**SAFETY_PIPELINE, **fields})
    for fields, message in (
        ({"keep_checkpoints": [200]}, "step 200 is past max_steps"),
        ({"keep_checkpoints": [15], "lora": True}, "set lora false"),
        ({"keep_checkpoints": [15], "trl": {"save_total_limit": 1}}, "save_total_limit would delete"),
    ):
        with pytest.raises(pydantic.ValidationError, match=message):
            TrainSpec.model_validate({"preset": "toy-safety", **fields})
    with pytest.raises(pydantic.ValidationError, match="parent_step names a checkpoint of the parent run"):
        FinetuneSpec(model="tiny", parent_step=60)
    assert FinetuneSpec(parent_id=PARENT, parent_step=60).tags()["parent_step"] == 60


def test_every_trl_loss_type_is_a_method_and_others_are_refused_naming_the_field():
    for method in ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo", "frpo"):
        assert TrainSpec(method=method).tags()["method"] == method
    assert TrainSpec(method="dr_grpo").tags()["lamb"] is None  # λ is FRPO's alone
    with pytest.raises(pydantic.ValidationError, match="method"):
        TrainSpec(method="ppo")


def test_sft_options_are_an_allow_list_for_mode_sft():
    spec = FinetuneSpec(
        model="tiny", sft={"packing": True, "optim": "adafactor"}, lr_scheduler_type="cosine_with_min_lr"
    )
    assert spec.sft.model_dump() == {"packing": True, "optim": "adafactor"}  # only what was given is kept
    for bad, where in (
        ({"sft": {"chat_template_path": "/etc/passwd"}}, "sft.chat_template_path"),
        ({"sft": {"trust_remote_code": True}}, "sft.trust_remote_code"),
        ({"sft": {"dataset_num_proc": 1000}}, "sft.dataset_num_proc"),
        ({"mode": "rl", "sft": {"packing": True}}, "apply to mode 'sft'"),
    ):
        with pytest.raises(pydantic.ValidationError, match=where):
            FinetuneSpec(model="tiny", **bad)


def test_the_default_model_root_is_the_data_dirs_models_folder_not_its_database_keys_or_runs(tmp_path):
    settings = Settings(data_dir=tmp_path)
    (tmp_path / "models" / "m").mkdir(parents=True)
    check_runnable(TrainSpec(model=str(tmp_path / "models" / "m")), settings)
    for secret in ("frpo.db", "admin.key", "runs"):
        (tmp_path / secret).touch()
        with pytest.raises(SpecError, match="dataset"):
            check_runnable(TrainSpec(dataset=str(tmp_path / secret)), settings)


def test_paths_are_confined_to_model_roots(tmp_path):
    inside = tmp_path / "models" / "m"
    inside.mkdir(parents=True)
    settings = Settings(data_dir=tmp_path, model_roots=[tmp_path / "models"])
    check_runnable(TrainSpec(model=str(inside)), settings)
    check_runnable(TrainSpec(model="Qwen/Qwen2.5-0.5B-Instruct"), settings)  # a hub id, loaded by name
    for outside in ("/etc", str(tmp_path / "models" / ".." / "elsewhere")):
        with pytest.raises(SpecError, match="model"):
            check_runnable(TrainSpec(model=outside), settings)
    parent = "123e4567-e89b-12d3-a456-426614174000"
    check_runnable(FinetuneSpec(parent_id=parent, dataset=str(inside)), settings)
    with pytest.raises(SpecError, match="dataset"):
        check_runnable(FinetuneSpec(parent_id=parent, dataset="/etc/passwd"), settings)
    with pytest.raises(SpecError, match="eval.judge"):
        check_runnable(FinetuneSpec(parent_id=parent, eval={"judge": "hf-classifier:/root/judge"}), settings)
    check_runnable(FinetuneSpec(parent_id=parent, eval={"judge": f"hf-classifier:{inside}"}), settings)
    with pytest.raises(SpecError, match="trust_remote_code"):
        check_runnable(TrainSpec(trust_remote_code=True), settings)
    check_runnable(TrainSpec(trust_remote_code=True), Settings(data_dir=tmp_path, allow_trust_remote_code=True))


def test_settings_default_to_the_embedded_service(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'frpo.db'}"
    assert settings.broker_url.startswith("sqla+sqlite:///") and settings.embedded
    with pytest.raises(pydantic.ValidationError, match="PostgreSQL"):
        Settings(environment="production")


# --- math RL, benchmarks, the GPU path ------------------------------------------------------------------------------


def test_the_math_reward_needs_math_problems_alone():
    spec = TrainSpec(dataset="toy_math", rewards=["math"])
    assert spec.decontaminate == "auto" and spec.math_levels == [3, 4, 5]
    with pytest.raises(pydantic.ValidationError, match="'toy' prompts have no task and no answer"):
        TrainSpec(rewards=["math"])
    with pytest.raises(pydantic.ValidationError, match="use it without them"):
        TrainSpec(dataset="toy_math", rewards=["math", "safety"])


def test_gpu_settings_have_one_place_gpu_not_trl():
    spec = TrainSpec(queue="gpu", gpu={"use_vllm": True, "num_gpus": 4, "vllm_tensor_parallel_size": 2})
    assert spec.gpu.vllm_mode == "colocate" and spec.gpu.bf16 and spec.gpu.distributed == "ddp"
    with pytest.raises(pydantic.ValidationError, match=r"may not set 'bf16': set gpu.bf16"):
        TrainSpec(trl={"bf16": False})
    with pytest.raises(pydantic.ValidationError, match="may not set 'model_init_kwargs'.*gpu.attn_implementation"):
        TrainSpec(trl={"model_init_kwargs": {"attn_implementation": "eager"}})
    with pytest.raises(pydantic.ValidationError, match="needs bf16"):
        TrainSpec(gpu={"attn_implementation": "flash_attention_2", "bf16": False})
    with pytest.raises(pydantic.ValidationError, match="must divide num_gpus"):
        TrainSpec(gpu={"use_vllm": True, "num_gpus": 3, "vllm_tensor_parallel_size": 2})


@pytest.mark.parametrize(
    "body,field",
    [
        ({"gpu": {"use_vllm": True}}, "gpu.use_vllm"),
        ({"gpu": {"attn_implementation": "flash_attention_2"}}, "gpu.attn_implementation"),
        ({"gpu": {"distributed": "zero2"}}, "gpu.distributed"),
        ({"gpu": {"num_gpus": 2, "distributed": "zero3"}}, "gpu.distributed"),
        ({"gpu": {"num_gpus": 2}}, "gpu.num_gpus"),
    ],
)
def test_gpu_options_on_the_cpu_queue_are_refused_naming_the_field(tmp_path, body, field):
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(SpecError, match="needs a GPU worker") as caught:
        check_runnable(TrainSpec(**body), settings)
    assert caught.value.field.startswith(field)
    check_runnable(TrainSpec(queue="gpu", **body), settings)  # the gpu queue takes them
    check_runnable(TrainSpec(gpu={"bf16": True, "gradient_checkpointing": True}), settings)  # both run on a CPU


@pytest.mark.parametrize(
    "gpu,field",
    [
        ({"attn_implementation": "flash_attention_2"}, "gpu.attn_implementation"),
        ({"distributed": "zero2"}, "gpu.distributed"),
        ({"num_gpus": 8, "distributed": "zero2"}, "gpu.distributed"),
        ({"num_gpus": 2}, "gpu.num_gpus"),
    ],
)
def test_finetune_gpu_options_on_the_cpu_queue_are_refused_naming_the_field(tmp_path, gpu, field):
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(SpecError, match="needs a GPU worker") as caught:
        check_runnable(FinetuneSpec(model="tiny", gpu=gpu), settings)
    assert caught.value.field == field
    with pytest.raises(SpecError) as caught:  # a pipeline's fine-tuning stage, named by its path
        check_runnable(PipelineSpec(finetune={"gpu": gpu}), settings)
    assert caught.value.field == f"finetune.{field}"
    check_runnable(FinetuneSpec(model="tiny", queue="gpu", gpu=gpu), settings)  # the gpu queue takes them
    check_runnable(FinetuneSpec(model="tiny", gpu={"bf16": True, "gradient_checkpointing": True}), settings)


def test_finetune_gpu_settings_are_the_shared_ones_without_vllm():
    spec = FinetuneSpec(model="tiny", queue="gpu", gpu={"num_gpus": 8, "distributed": "zero2"})
    assert spec.gpu.bf16 and spec.gpu.gradient_checkpointing and spec.gpu.attn_implementation == "auto"
    assert FinetuneSpec(model="tiny").gpu is None and FinetuneSpec(model="tiny").max_grad_norm == 1.0  # as before
    with pytest.raises(pydantic.ValidationError, match="use_vllm"):  # SFT generates nothing: no vLLM settings
        FinetuneSpec(model="tiny", gpu={"use_vllm": True})
    with pytest.raises(pydantic.ValidationError, match="needs bf16"):
        FinetuneSpec(model="tiny", gpu={"attn_implementation": "flash_attention_2", "bf16": False})
    pipeline = PipelineSpec(finetune={"queue": "gpu", "gpu": {"num_gpus": 4}})
    assert pipeline.finetune_specs(PARENT)[0].gpu.num_gpus == 4  # the stage's spec keeps its GPU settings


def test_evaluate_specs_old_and_new():
    old = JOB_SPEC.validate_python({"kind": "evaluate", "run_id": PARENT, "eval": {"n_harmful": 4}, "queue": "cpu"})
    assert isinstance(old, EvaluateSpec) and old.safety and old.benchmarks == [] and old.eval.n_harmful == 4
    bench = EvaluateSpec(run_id=PARENT, benchmarks=["toy_arith", "toy_humaneval"], limit=4)
    assert bench.safety is False and bench.backend == "auto"  # default: safety only without benchmarks
    assert bench.code_scorer == "auto" and old.code_scorer == "auto"  # specs stored before the option read as auto
    with pytest.raises(pydantic.ValidationError, match="code_scorer"):
        EvaluateSpec(run_id=PARENT, benchmarks=["mbpp+"], code_scorer="lenient")
    assert bench.tags() == {"stage": "evaluate", "benchmarks": ["toy_arith", "toy_humaneval"]}
    assert EvaluateSpec.model_validate(bench.model_dump()).safety is False  # stored resolved
    assert EvaluateSpec(run_id=PARENT, benchmarks=["mmlu"], safety=True).safety
    with pytest.raises(pydantic.ValidationError, match="nothing to evaluate"):
        EvaluateSpec(run_id=PARENT, safety=False)
    with pytest.raises(pydantic.ValidationError, match="given more than once"):
        EvaluateSpec(run_id=PARENT, benchmarks=["mbpp+", "mbpp+"])


def test_benchmark_paths_and_backends_are_checked(tmp_path):
    settings = Settings(data_dir=tmp_path)
    inside = tmp_path / "models" / "tasks" / "mine"
    inside.mkdir(parents=True)
    check_runnable(EvaluateSpec(run_id=PARENT, benchmarks=["minerva_math500", "mbpp+", str(inside)]), settings)
    with pytest.raises(SpecError) as caught:
        check_runnable(EvaluateSpec(run_id=PARENT, benchmarks=["mbpp+", "/etc/problems.jsonl"]), settings)
    assert caught.value.field == "benchmarks.1"
    with pytest.raises(SpecError) as caught:
        check_runnable(EvaluateSpec(run_id=PARENT, benchmarks=["mmlu"], backend="vllm"), settings)
    assert caught.value.field == "backend"
    check_runnable(EvaluateSpec(run_id=PARENT, benchmarks=["mmlu"], backend="vllm", queue="gpu"), settings)
    pipeline = PipelineSpec(evaluation={"benchmarks": ["mmlu"], "backend": "vllm"})
    with pytest.raises(SpecError) as caught:
        check_runnable(pipeline, settings)
    assert caught.value.field == "evaluation.backend"
    with pytest.raises(SpecError) as caught:
        check_runnable(TrainSpec(dataset="toy_math", rewards=["math"], decontaminate="/etc/math500.jsonl"), settings)
    assert caught.value.field == "decontaminate"


def test_pipeline_evaluations_before_and_after():
    legacy = PipelineSpec(finetune={"eval": {"n_harmful": 3}})
    assert legacy.evaluate and not legacy.evaluate_before and legacy.evaluation is None
    assert legacy.evaluate_spec(PARENT).eval.n_harmful == 3 and legacy.evaluate_spec(PARENT).safety
    spec = PipelineSpec(
        finetune={"queue": "gpu"}, evaluate_before=True, evaluation={"benchmarks": ["mbpp+"], "limit": 5}
    )
    evaluation = spec.evaluate_spec(PARENT)
    assert evaluation.benchmarks == ["mbpp+"] and evaluation.limit == 5 and not evaluation.safety
    assert evaluation.queue == "gpu" and str(evaluation.run_id) == PARENT
    both = PipelineSpec(finetune={"eval": {"n_harmful": 3}}, evaluation={"benchmarks": ["mmlu"], "safety": True})
    assert both.evaluate_spec(PARENT).eval.n_harmful == 3  # the fine-tuning stage's safety settings, unless given


def test_streamed_code_data_needs_a_limit():
    with pytest.raises(pydantic.ValidationError, match="give dataset_limit"):
        FinetuneSpec(parent_id=PARENT, dataset="opencodeinstruct")
    spec = FinetuneSpec(parent_id=PARENT, dataset="opencodeinstruct", dataset_limit=100, lora_dropout=0.05)
    assert spec.lora_dropout == 0.05 and spec.max_grad_norm == 1.0


def test_sft_runs_for_max_steps_or_for_epochs_exactly_one():
    assert FinetuneSpec(model="tiny").max_steps == 30  # neither field given: the default step count
    by_epochs = FinetuneSpec(model="tiny", epochs=1.5)
    assert by_epochs.epochs == 1.5 and by_epochs.max_steps is None  # the default gives way to the epochs given
    assert FinetuneSpec.model_validate(by_epochs.model_dump()) == by_epochs  # as stored, so read back
    for bad, where in (
        ({"max_steps": 10, "epochs": 1}, "exactly one of max_steps and epochs \\(both given\\)"),
        ({"max_steps": None}, "exactly one of max_steps and epochs \\(neither given\\)"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1e6}, "epochs"),
        ({"mode": "rl", "epochs": 1}, "epochs: downstream RL .* give max_steps"),
    ):
        with pytest.raises(pydantic.ValidationError, match=where):
            FinetuneSpec(model="tiny", **bad)


def test_epochs_given_over_a_preset_replace_its_max_steps():
    spec = FinetuneSpec(preset="toy-warm-start", epochs=2)
    assert spec.epochs == 2 and spec.max_steps is None and spec.learning_rate == 3e-3  # the preset's other values
    pipeline = PipelineSpec(finetune={"preset": "toy-benign-sft", "epochs": 1})
    (finetune,) = pipeline.finetune_specs(PARENT)
    assert finetune.epochs == 1 and finetune.max_steps is None
