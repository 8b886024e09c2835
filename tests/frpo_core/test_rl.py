"""RL jobs as data: the GPU translation into the trainer's config, the math prompts with their decontamination record,
and the toy math warm start."""

from __future__ import annotations

import json
import re
from importlib.resources import files

import pytest

from frpo_core.data import load_sft
from frpo_core.gpu import attention_implementation
from frpo_core.mathrl import MATH_SYSTEM_PROMPT
from frpo_core.rl import (
    TOY_MATH_WARM_START,
    GpuOptions,
    RLJob,
    gpu_config_options,
    load_rl_prompts,
    rl_config,
    rl_options,
    toy_math_warm_start_rows,
)


def test_without_gpu_options_the_config_keeps_trls_defaults(tmp_path):
    options = rl_options(RLJob(model_path="m", output_dir=tmp_path))
    assert not {"use_vllm", "bf16", "gradient_checkpointing", "model_init_kwargs"} & set(options)
    assert options["use_cpu"] and options["loss_type"] == "frpo" and options["logging_steps"] == 1


def test_vllm_colocate_bf16_and_attention_reach_the_config(tmp_path):
    gpu = GpuOptions(use_vllm=True, vllm_gpu_memory_utilization=0.3, vllm_tensor_parallel_size=2, bf16=True)
    job = RLJob(model_path="m", output_dir=tmp_path, gpu=gpu, options={"gradient_accumulation_steps": 16})
    options = rl_options(job)
    assert options["use_vllm"] and options["vllm_mode"] == "colocate"
    assert options["vllm_gpu_memory_utilization"] == 0.3 and options["vllm_tensor_parallel_size"] == 2
    assert "vllm_server_host" not in options  # colocate: no server to reach
    assert options["bf16"] and options["gradient_checkpointing"] and options["gradient_accumulation_steps"] == 16
    # no CUDA (or no flash-attn) here: "auto" falls back to SDPA; bf16 weights with bf16
    assert options["model_init_kwargs"] == {"attn_implementation": "sdpa", "dtype": "bfloat16"}
    config = rl_config(job)  # TRL's config does not import vLLM; the trainer would
    assert config.use_vllm and config.vllm_mode == "colocate" and config.vllm_gpu_memory_utilization == 0.3
    assert config.bf16 and config.model_init_kwargs["attn_implementation"] == "sdpa"
    assert config.steps_per_generation == 1  # FRPO: whole groups per micro-batch, also with accumulation


def test_vllm_server_mode_and_explicit_options(tmp_path):
    gpu = GpuOptions(use_vllm=True, vllm_mode="server", vllm_server_host="10.0.0.2", vllm_server_port=8001, bf16=False)
    options = gpu_config_options(gpu)
    assert options["vllm_server_host"] == "10.0.0.2" and options["vllm_server_port"] == 8001
    assert "vllm_gpu_memory_utilization" not in options and not options["bf16"]
    assert options["model_init_kwargs"] == {"attn_implementation": "sdpa"}  # fp32 weights: no dtype forced
    job = RLJob(
        model_path="m",
        output_dir=tmp_path,
        gpu=GpuOptions(attn_implementation="eager"),
        trust_remote_code=True,
        options={"model_init_kwargs": {"dtype": "float16"}},
    )
    init = rl_options(job)["model_init_kwargs"]  # the pass-through options win, trust_remote_code is added
    assert init == {"attn_implementation": "eager", "dtype": "float16", "trust_remote_code": True}


def test_attention_auto_needs_flash_attn_a_gpu_and_16_bit():
    assert attention_implementation("flash_attention_2", bf16=True) == "flash_attention_2"
    assert attention_implementation("auto", bf16=False) == "sdpa"
    assert attention_implementation("auto", bf16=True) in ("sdpa", "flash_attention_2")


def test_math_prompts_record_what_decontamination_removed(tmp_path):
    problems = [
        {"problem": "What is $1 + 1$?", "solution": "$\\boxed{2}$", "level": "Level 3", "type": "Algebra"},
        {"problem": "What is $2+2$?", "solution": "$\\boxed{4}$", "level": "Level 4", "type": "Algebra"},
        {"problem": "What is $3 + 3$?", "solution": "$\\boxed{6}$", "level": "Level 1", "type": "Algebra"},
        {"problem": "What is $5 + 5$?", "solution": "$\\boxed{10}$", "level": "Level 5", "type": "Algebra"},
    ]
    source, reference = tmp_path / "math.jsonl", tmp_path / "bench.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in problems))
    reference.write_text(json.dumps({"problem": "What is $2 + 2$?", "answer": "4"}) + "\n")
    prompts = load_rl_prompts(source, ["math"], math_exclude=reference)
    assert prompts.record == {"rows": 2, "decontaminated_against": str(reference), "removed": 1}
    assert prompts.dataset["answer"] == ["2", "10"]  # level 1 filtered out, 2 + 2 removed as a copy
    everything = load_rl_prompts(source, ["math"], math_levels=None, math_exclude=None)
    assert everything.record == {"rows": 4, "decontaminated_against": None, "removed": 0}


def test_the_shipped_math_warm_start_is_the_generated_one():
    path = files("frpo_core").joinpath("assets", TOY_MATH_WARM_START)
    shipped = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows = toy_math_warm_start_rows()
    assert shipped == rows and len(rows) == 400
    assert all(row["messages"][0] == {"role": "system", "content": MATH_SYSTEM_PROMPT} for row in rows)
    assert all(row["messages"][-1]["content"].startswith("The answer is \\boxed{") for row in rows)
    assert len(load_sft("toy_math_warm_start")) == 400


def _answers(rows: list[dict]) -> dict[str, list[int]]:
    """Each problem's warm-start answers, by problem."""
    answers: dict[str, list[int]] = {}
    for row in rows:
        reply = row["messages"][-1]["content"]
        answers.setdefault(row["messages"][1]["content"], []).append(int(reply.split("{")[1].split("}")[0]))
    return answers


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_the_warm_start_drops_the_carry_in_its_share_of_the_copies(share):
    answers = _answers(toy_math_warm_start_rows(carry_share=share, copies=4))
    assert len(answers) == 100
    for problem, given in answers.items():
        a, b = (int(n) for n in re.findall(r"\d", problem))
        if a + b < 10:  # no carry: always right
            assert given == [a + b] * 4
        else:  # a carry: right in the share, the carry dropped in the rest
            assert sorted(given) == sorted([a + b] * round(4 * share) + [a + b - 10] * round(4 * (1 - share)))


def test_the_warm_start_rejects_a_share_outside_zero_to_one():
    with pytest.raises(ValueError, match="carry_share=1.5 must be in"):
        toy_math_warm_start_rows(carry_share=1.5)


def test_the_presets_math_system_prompt_is_the_authors():
    from store.presets import MATH_SYSTEM_PROMPT as PRESET_PROMPT

    assert PRESET_PROMPT == MATH_SYSTEM_PROMPT
