"""The job contract: defaults, sweeps, and what the shape alone cannot check."""

from __future__ import annotations

import pydantic
import pytest

from store.settings import Settings
from store.specs import JOB_SPEC, FinetuneSpec, SpecError, SweepSpec, TrainSpec, check_runnable


def test_smallest_submission_is_the_toy_task():
    spec = TrainSpec.model_validate({"kind": "train", "method": "grpo"})
    assert spec.model == "tiny" and spec.dataset == "toy" and spec.scale_rewards == "none"
    assert spec.tags()["method"] == "grpo" and spec.tags()["lamb"] is None
    assert TrainSpec.model_validate({"kind": "train", "method": "frpo", "lamb": 0.2}).tags()["lamb"] == 0.2


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
