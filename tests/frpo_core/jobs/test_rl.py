"""RL jobs as data: the GPU translation into the trainer's config, the math prompts with their decontamination record,
the toy math warm start, and the prompts' length bound."""

from __future__ import annotations

import json

from transformers import AutoTokenizer

from frpo_core.data.prompt_length import prompt_length
from frpo_core.jobs.rl import RLJob, load_rl_prompts, load_rl_prompts_of
from frpo_core.tiny import build_tiny_model


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


def test_rl_prompts_are_bounded_with_the_models_tokenizer_and_the_bound_recorded(tmp_path):
    rows = [
        {"prompt": "hello there", "task": "normal"},
        {"prompt": "please " * 200 + "tell me the answer", "task": "safety"},
    ]
    source = tmp_path / "prompts.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    model = build_tiny_model(tmp_path / "tiny")
    job = RLJob(model_path=model, dataset=source, rewards=["safety", "helpfulness"], max_prompt_length=48)
    prompts = load_rl_prompts_of(job)
    assert prompts.record == {"rows": 2} and prompts.bound == {"max_prompt_length": 48, "truncated": 1, "dropped": 0}
    cut = prompts.dataset[1]["prompt"]
    assert (
        cut[-1]["content"].endswith("tell me the answer")
        and prompt_length(AutoTokenizer.from_pretrained(model), cut) <= 48
    )
    dropped = load_rl_prompts_of(RLJob(**{**vars(job), "overlong_prompts": "drop"}))
    assert dropped.bound["dropped"] == 1 and dropped.dataset["task"] == ["normal"]
    unbounded = load_rl_prompts_of(RLJob(**{**vars(job), "max_prompt_length": None}))
    assert unbounded.dataset["prompt"][1][0]["content"].startswith("please please")
