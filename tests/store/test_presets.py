"""Presets: the paper's settings and the toy task's, by name, under what the spec gives itself."""

from __future__ import annotations

import pydantic
import pytest

from store.presets import PAPER_SAFETY_LAMBDA_BETA, PRESETS, preset_names
from store.specs import JOB_SPEC, FinetuneSpec, PipelineSpec, SweepSpec, TrainSpec

PARENT = "123e4567-e89b-12d3-a456-426614174000"


def filled(requires: dict[str, str]) -> dict:
    """A body giving every required (dotted) field: a parent run id, or a file name."""
    body: dict = {}
    for path in requires:
        *parents, leaf = path.split(".")
        node = body
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = PARENT if leaf == "parent_id" else "data/mix.parquet"
    return body


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_spec(name):
    preset = PRESETS[name]
    body = {"preset": name, **filled(preset.requires)}
    if preset.kind == "sweep":
        assert SweepSpec.model_validate(body).points()
        return
    if preset.kind == "finetune" and "model" not in preset.values:
        body["parent_id"] = PARENT
    spec = JOB_SPEC.validate_python({"kind": preset.kind, **body})
    if preset.kind == "pipeline":  # its stages' presets carry their own notes, into their own runs' tags
        assert spec.preset == name and spec.tags()["pipeline_preset"] == name
        return
    assert spec.preset == name
    tags = spec.tags()
    assert any(value == name for value in tags.values())
    if preset.notes:  # every difference a preset keeps (from the paper, between methods) is in the run's tags
        assert list(preset.notes) in tags.values()


def test_the_spec_overrides_the_preset_and_nested_options_merge():
    spec = TrainSpec.model_validate(
        {
            "preset": "safety-mistral-7b",
            "dataset": "mix.parquet",
            "lamb": 2.0,
            "trl": {"top_p": 1.0},
            "eval": {"every": 10},
        }
    )
    assert spec.model == "mistralai/Mistral-7B-Instruct-v0.1" and spec.lora and spec.lora_r == 64
    assert spec.lamb == 2.0 and spec.num_generations == 8 and spec.learning_rate == 1e-5
    assert spec.trl.top_p == 1.0 and spec.trl.lr_scheduler_type == "cosine"
    assert spec.eval.every == 10 and spec.eval.prompts == "harmbench"


def test_a_preset_that_needs_a_field_says_which():
    with pytest.raises(pydantic.ValidationError, match="preset 'safety-mistral-7b' needs dataset"):
        TrainSpec.model_validate({"preset": "safety-mistral-7b"})


def test_an_unknown_or_misplaced_preset_names_the_choices():
    with pytest.raises(pydantic.ValidationError, match="choose one of .*toy-safety"):
        TrainSpec.model_validate({"preset": "nope"})
    with pytest.raises(pydantic.ValidationError, match="not a finetune preset"):
        FinetuneSpec.model_validate({"preset": "toy-safety", "parent_id": PARENT})
    assert "toy-warm-start" in preset_names("finetune") and "toy-safety" in preset_names("train")


def test_presets_are_offered_in_the_schema():
    schema = TrainSpec.model_json_schema()
    assert set(preset_names("train")) <= set(schema["properties"]["preset"]["enum"])


def test_warm_start_is_sft_of_a_base_model_without_evaluation():
    spec = JOB_SPEC.validate_python({"kind": "finetune", "preset": "toy-warm-start"})
    assert spec.model == "tiny" and spec.parent_id is None and spec.eval is None
    assert spec.tags()["base_model"] == "tiny"
    with pytest.raises(pydantic.ValidationError, match="exactly one of parent_id"):
        JOB_SPEC.validate_python({"kind": "finetune", "preset": "toy-warm-start", "parent_id": PARENT})


def test_paper_pairs_sweep_runs_grpo_at_every_beta():
    sweep = SweepSpec.model_validate(
        {
            "name": "paper",
            "base": {"preset": "safety-qwen2.5-7b", "dataset": "mix.parquet"},
            "grid": {"lamb_beta": [list(pair) for pair in PAPER_SAFETY_LAMBDA_BETA], "seed": [0, 1]},
        }
    )
    points = sweep.points()
    frpo = {(p.lamb, p.beta, p.seed) for p in points if p.method == "frpo"}
    grpo = {(p.beta, p.seed) for p in points if p.method == "grpo"}
    assert frpo == {(lamb, beta, seed) for lamb, beta in PAPER_SAFETY_LAMBDA_BETA for seed in (0, 1)}
    assert grpo == {(beta, seed) for _, beta in PAPER_SAFETY_LAMBDA_BETA for seed in (0, 1)}
    with pytest.raises(pydantic.ValidationError, match="lamb_beta replaces lamb and beta"):
        SweepSpec.model_validate({"name": "s", "base": {}, "grid": {"lamb_beta": [[1, 0.1]], "lamb": [1]}})


def test_a_sweep_of_pipelines_seeds_the_whole_pipeline():
    sweep = SweepSpec.model_validate(
        {
            "name": "toy",
            "base": {
                "kind": "pipeline",
                "train": {"preset": "toy-safety", "parent_id": PARENT},
                "finetune": {"preset": "toy-benign-sft"},
            },
            "grid": {"lamb": [0.2, 0.5], "seed": [0, 1, 2]},
        }
    )
    points = sweep.points()
    assert len(points) == 9 and all(isinstance(p, PipelineSpec) for p in points)
    assert all(p.finetune.seed == p.train.seed for p in points)
    assert {p.train.method for p in points} == {"grpo", "frpo"}
    assert all(str(p.train.parent_id) == PARENT and p.finetune.preset == "toy-benign-sft" for p in points)


def test_grpo_runs_along_one_run_per_beta_trace_a_frontier_beside_frpo():
    sweep = SweepSpec.model_validate({"preset": "toy-frontier", "base": {"train": {"parent_id": PARENT}}})
    points = sweep.points()
    grpo = sorted((p.train.beta, p.train.max_steps, p.train.seed) for p in points if p.train.method == "grpo")
    frpo = sorted((p.train.lamb, p.train.max_steps, p.train.seed) for p in points if p.train.method == "frpo")
    assert grpo == [(beta, 30, seed) for beta in (0.0, 0.05) for seed in range(16)]  # one run per β and seed
    assert all(p.finetune_at == [15, 30] for p in points if p.train.method == "grpo")  # read at two steps
    assert frpo == [(lamb, 30, seed) for lamb in (0.2, 0.5) for seed in range(16)]
    assert all(p.finetune.preset == "toy-benign-sft" and str(p.train.parent_id) == PARENT for p in points)
    shipped = SweepSpec.model_validate({"preset": "toy-frontier"}).points()  # no parent: the shipped warm start
    assert {(p.train.model, p.train.parent_id) for p in shipped} == {("toy-warm-start", None)}
    with pytest.raises(pydantic.ValidationError, match="grpo_budgets need include_grpo"):
        SweepSpec.model_validate(
            {"name": "s", "base": {}, "grid": {"seed": [0]}, "include_grpo": False, "grpo_budgets": {"max_steps": [5]}}
        )


def test_the_paper_frontier_preset_gives_grpo_six_budgets():
    sweep = SweepSpec.model_validate(
        {"preset": "safety-frontier-mistral-7b", "base": {"train": {"dataset": "mix.parquet"}}}
    )
    grpo = {(p.train.beta, p.train.max_steps) for p in sweep.points() if p.train.method == "grpo"}
    assert grpo == {(beta, steps) for beta in (1e-3, 5e-3, 0.1) for steps in (250, 500)}
    assert sweep.base.finetune.preset == "gsm8k-sft" and sweep.base.train.lora


def test_the_math_preset_is_the_papers_with_its_differences_noted():
    spec = TrainSpec.model_validate({"preset": "math-qwen2.5-math-7b", "method": "grpo"})
    assert spec.model == "Qwen/Qwen2.5-Math-7B" and spec.rewards == ["math"] and spec.dataset == "competition_math"
    assert spec.decontaminate == "auto" and spec.math_levels == [3, 4, 5]
    assert (spec.lora, spec.lora_r, spec.lora_alpha, spec.beta, spec.learning_rate) == (True, 64, 128, 1e-4, 6e-6)
    assert spec.num_generations == 8 and spec.max_completion_length == 2048 and spec.queue == "gpu"
    # 512 completions a step: 32 per micro-batch (4 whole groups) x 16 accumulation steps
    assert spec.per_device_train_batch_size * spec.trl.gradient_accumulation_steps == 512
    assert spec.trl.warmup_steps == 0.1 and spec.trl.lr_scheduler_type == "cosine"
    assert spec.trl.max_grad_norm == 0.5 and spec.trl.weight_decay == 0.0
    assert spec.trl.temperature == 1.0 and spec.trl.top_p == 1.0
    assert spec.gpu.use_vllm and spec.gpu.vllm_mode == "colocate" and spec.gpu.bf16
    notes = spec.tags()["preset_notes"]
    assert any("share every setting" in note and "max_grad_norm 1.0" in note for note in notes)
    assert any("8 GPUs" in note for note in notes) and any("MATH500" in note for note in notes)


def test_code_sft_is_the_papers_and_toy_math_needs_its_warm_start():
    spec = FinetuneSpec.model_validate({"preset": "code-sft", "parent_id": PARENT})
    assert spec.dataset == "opencodeinstruct" and spec.dataset_limit == 50_000 and spec.eval is None
    assert (spec.lora_r, spec.lora_alpha, spec.lora_dropout, spec.learning_rate) == (16, 32, 0.05, 5e-5)
    assert spec.per_device_train_batch_size * spec.gradient_accumulation_steps == 64
    assert (spec.warmup_ratio, spec.weight_decay, spec.max_grad_norm, spec.max_length) == (0.03, 0.04, 0.3, 4096)
    assert spec.queue == "gpu" and spec.gpu.bf16 and spec.gpu.gradient_checkpointing and spec.gpu.num_gpus == 1
    assert not any("bf16" in note for note in spec.tags()["finetune_preset_notes"])  # no longer a difference
    assert FinetuneSpec.model_validate({"preset": "code-sft", "parent_id": PARENT, "max_length": 2048}).max_length
    with pytest.raises(pydantic.ValidationError, match="preset 'toy-math' needs parent_id"):
        TrainSpec.model_validate({"preset": "toy-math"})
    warm = JOB_SPEC.validate_python({"kind": "finetune", "preset": "toy-math-warm-start"})
    assert warm.model == "tiny" and warm.dataset == "toy_math_warm_start" and warm.eval is None


def test_the_math_frontier_sweep_evaluates_before_and_after_code_sft():
    sweep = SweepSpec.model_validate({"preset": "math-frontier-qwen2.5-math-7b"})
    points = sweep.points()
    frpo = sorted((p.train.lamb, p.train.seed) for p in points if p.train.method == "frpo")
    grpo = sorted((p.train.max_steps, p.train.seed) for p in points if p.train.method == "grpo")
    assert frpo == [(lamb, seed) for lamb in (0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 10.0) for seed in (0, 1, 2)]
    assert grpo == [(steps, seed) for steps in (200, 400, 800) for seed in (0, 1, 2)]
    for point in points:
        assert point.evaluate and point.evaluate_before and point.finetune.preset == "code-sft"
        assert point.evaluation.benchmarks == ["minerva_math500", "mbpp+", "humaneval+"]
        assert point.evaluation.max_new_tokens == 2048 and "boxed" in point.evaluation.system_prompt
        assert point.train.preset == "math-qwen2.5-math-7b" and point.finetune.seed == point.train.seed


def test_the_toy_math_pipeline_preset_merges_under_the_spec():
    spec = PipelineSpec.model_validate(
        {"preset": "toy-math-pipeline", "train": {"parent_id": PARENT, "max_steps": 3}, "evaluation": {"limit": 4}}
    )
    assert spec.train.preset == "toy-math" and spec.train.max_steps == 3 and str(spec.train.parent_id) == PARENT
    assert spec.finetune.preset == "toy-code-sft" and spec.evaluate_before
    assert spec.evaluation.benchmarks == ["toy_arith", "toy_humaneval"] and spec.evaluation.limit == 4
    with pytest.raises(pydantic.ValidationError, match="needs train.parent_id"):
        PipelineSpec.model_validate({"preset": "toy-math-pipeline"})
    sweep = SweepSpec.model_validate({"preset": "toy-math-frontier", "base": {"train": {"parent_id": PARENT}}})
    assert all(p.preset == "toy-math-pipeline" and p.evaluate_before for p in sweep.points())
