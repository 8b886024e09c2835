"""What a spec refuses: TRL options off the allow-list, unbounded values, NaN and ±Infinity, sweeps too large to
build, and paths dressed as names."""

from __future__ import annotations

import math

import pydantic
import pytest

from store.settings import Settings
from store.specs import (
    JOB_SPEC,
    MAX_SWEEP_POINTS,
    EvaluateSpec,
    SpecError,
    SweepGrid,
    SweepSpec,
    TrainSpec,
    check_runnable,
)


def test_trl_takes_the_options_a_researcher_tunes_and_stores_only_those_given():
    options = {
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.1,
        "weight_decay": 0.01,
        "temperature": 0.7,
        "top_p": 0.95,
        "top_k": 50,
        "num_iterations": 2,
        "epsilon": 0.2,
        "mask_truncated_completions": True,
        "gradient_accumulation_steps": 4,
        "max_grad_norm": 0.5,
        "logging_steps": 5,
        "dataloader_num_workers": 2,
    }
    spec = TrainSpec(trl=options)
    assert spec.trl.num_iterations == 2 and spec.trl.mask_truncated_completions is True
    assert spec.model_dump()["trl"] == options  # unset options stay TRL's defaults, not stored nulls
    assert TrainSpec().model_dump()["trl"] == {}


@pytest.mark.parametrize(
    "option,value,why",
    [
        ("trust_remote_code", True, "set the spec's own field 'trust_remote_code'"),
        ("model_init_kwargs", {"trust_remote_code": True}, "from_pretrained, where they can run remote code"),
        ("model_init_kwargs", "not an object", "from_pretrained"),
        ("push_to_hub", True, "uploads to the Hugging Face Hub"),
        ("hub_model_id", "me/model", "uploads to the Hugging Face Hub"),
        ("hub_token", "hf_x", "uploads to the Hugging Face Hub"),
        ("vllm_server_base_url", "http://10.0.0.9:8000", "FRPO_VLLM_SERVER_HOST"),
        ("vllm_server_host", "10.0.0.9", "FRPO_VLLM_SERVER_HOST"),
        ("deepspeed", "/etc/ds.json", "set gpu.distributed"),
        ("use_vllm", True, "set gpu.use_vllm"),
        ("loss_type", "dapo", "set the spec's 'method'"),
        ("report_to", ["wandb"], "set the spec's own field 'report_to'"),
    ],
)
def test_trl_refuses_options_that_reach_code_hosts_files_or_the_hub_naming_them_and_why(option, value, why):
    with pytest.raises(pydantic.ValidationError, match=f"may not set '{option}': .*{why}"):
        TrainSpec(trl={option: value})


@pytest.mark.parametrize(
    "trl,error",
    [
        ({"dataloader_num_workers": 64}, "less than or equal to 8"),
        ({"temperature": 0}, "greater than 0"),
        ({"top_p": 1.5}, "less than or equal to 1"),
        ({"num_iterations": 10**9}, "less than or equal to 64"),
        ({"lr_scheduler_type": "exotic"}, "cosine"),
        ({"some_new_option": 1}, "Extra inputs are not permitted"),
        ({"reward_weights": [1.0] * 100}, "at most 8 items"),
    ],
)
def test_trl_options_are_typed_bounded_and_an_allow_list(trl, error):
    with pytest.raises(pydantic.ValidationError, match=error):
        TrainSpec(trl=trl)


def test_the_gpu_spec_takes_no_vllm_server_address_the_operator_sets_it():
    with pytest.raises(pydantic.ValidationError, match="vllm_server_host"):
        TrainSpec(queue="gpu", gpu={"use_vllm": True, "vllm_mode": "server", "vllm_server_host": "10.0.0.9"})
    assert Settings(vllm_server_host="10.0.0.2", vllm_server_port=8001).vllm_server_port == 8001


def _unbounded(schema: dict) -> list[str]:
    """Every integer without a maximum, list without maxItems, object without a fixed shape or maxProperties and
    free string without maxLength in a JSON schema."""
    defs, found, seen = schema.get("$defs", {}), [], set()

    def walk(node: object, where: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, where)
            return
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                walk(defs[name], name)
            return
        kind = node.get("type")
        if kind == "integer" and "maximum" not in node:
            found.append(f"{where}: integer")
        if kind == "array" and "maxItems" not in node:
            found.append(f"{where}: array")
        if kind == "object" and "properties" not in node and "maxProperties" not in node:
            found.append(f"{where}: object")
        if kind == "string" and not {"maxLength", "enum", "const", "format"} & set(node):
            found.append(f"{where}: string")
        for key, value in node.items():
            if key == "properties":
                for name, sub in value.items():
                    walk(sub, f"{where}.{name}")
            elif key != "$defs":
                walk(value, where)

    walk(schema, "")
    return found


@pytest.mark.parametrize("schema", [JOB_SPEC.json_schema(), SweepSpec.model_json_schema()], ids=["job", "sweep"])
def test_every_integer_list_object_and_string_of_a_spec_is_bounded(schema):
    assert _unbounded(schema) == []


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "body",
    [
        lambda bad: {"lamb": bad},
        lambda bad: {"trl": {"temperature": bad}},
        lambda bad: {"kind": "finetune", "model": "tiny", "weight_decay": bad},
        lambda bad: {"kind": "pipeline", "train": {"beta": bad}},
    ],
    ids=["lamb", "trl.temperature", "finetune.weight_decay", "pipeline.train.beta"],
)
def test_floats_refuse_nan_and_infinity(body, bad):
    with pytest.raises(pydantic.ValidationError, match="finite number"):
        JOB_SPEC.validate_python(body(bad))


def test_sweep_axes_refuse_nan_and_infinity():
    for grid in ({"lamb": [0.5, math.nan]}, {"lamb_beta": [[0.5, math.inf]]}):
        with pytest.raises(pydantic.ValidationError, match="finite number"):
            SweepSpec(name="s", base={}, grid=grid)


def test_integers_are_bounded_where_a_database_or_numpy_would_fail():
    with pytest.raises(pydantic.ValidationError, match="less than or equal to 4294967295"):
        TrainSpec(seed=2**32)
    with pytest.raises(pydantic.ValidationError, match="less than or equal to 1000000"):
        SweepSpec(name="s", base={}, grid={"seed": [0]}, grpo_budgets={"max_steps": [10**19]})


def test_a_sweep_is_sized_from_its_axes_before_any_point_is_built(monkeypatch):
    def never(_axes):
        raise AssertionError("the product was built")

    monkeypatch.setattr(SweepGrid, "_product", staticmethod(never))
    axis = list(range(1, 401))
    with pytest.raises(pydantic.ValidationError, match=f"more than {MAX_SWEEP_POINTS} points"):
        SweepSpec(name="s", base={}, grid={"lamb": axis, "beta": axis, "seed": axis})
    with pytest.raises(pydantic.ValidationError, match=f"more than {MAX_SWEEP_POINTS} points"):  # GRPO's budgets
        SweepSpec(name="s", base={}, grid={"seed": list(range(20))}, grpo_budgets={"max_steps": list(range(1, 30))})


def test_an_axis_longer_than_a_sweep_may_be_is_refused_as_a_list():
    with pytest.raises(pydantic.ValidationError, match=f"at most {MAX_SWEEP_POINTS} items"):
        SweepSpec(name="s", base={}, grid={"lamb": [1.0] * 1000})
    with pytest.raises(pydantic.ValidationError, match=f"at most {MAX_SWEEP_POINTS} items"):
        SweepSpec(name="s", base={}, grid={"seed": [0]}, grpo_budgets={"beta": [0.0] * 1000})


def test_grid_sizes_count_grpo_budgets_and_seeds():
    spec = SweepSpec(
        name="s", base={}, grid={"lamb": [0.5, 1.0], "seed": [0, 1, 2]}, grpo_budgets={"max_steps": [10, 20]}
    )
    assert spec.grid.size(spec.include_grpo, spec.grpo_budgets) == len(spec.points()) == 2 * 3 + 2 * 3


@pytest.mark.parametrize("model", ["preset", "grid"])
def test_a_preset_given_as_a_list_is_refused_as_the_preset_field(model):
    with pytest.raises(pydantic.ValidationError) as caught:
        if model == "preset":
            TrainSpec.model_validate({"preset": ["toy-safety"]})
        else:
            SweepSpec.model_validate({"preset": ["toy-frontier"], "name": "s", "base": {}, "grid": {"seed": [0]}})
    assert caught.value.errors()[0]["loc"] == ("preset",)


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"kind": "evaluate", "benchmarks": [".."]}, "benchmarks.0"),
        ({"kind": "evaluate", "benchmarks": ["mmlu", "~"]}, "benchmarks.1"),
        ({"kind": "train", "judge": "hf-classifier:.."}, "judge"),
        ({"kind": "train", "eval": {"judge": "hf-classifier:~"}}, "eval.judge"),
    ],
)
def test_names_without_a_slash_still_pass_the_path_checks(tmp_path, spec, field):
    if spec["kind"] == "evaluate":
        spec = {**spec, "run_id": "123e4567-e89b-12d3-a456-426614174000"}
    with pytest.raises(SpecError, match="neither a name, a hub id, nor a path under a model root") as caught:
        check_runnable(JOB_SPEC.validate_python(spec), Settings(data_dir=tmp_path / "data"))
    assert caught.value.field == field
    names = EvaluateSpec(run_id="123e4567-e89b-12d3-a456-426614174000", benchmarks=["mmlu", "mbpp+"])
    check_runnable(names, Settings(data_dir=tmp_path / "data"))  # plain names still pass
