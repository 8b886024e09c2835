"""RL jobs as data: the GPU translation into the trainer's config, the math prompts with their decontamination record,
and the toy math warm start."""

from __future__ import annotations

import json

from frpo_core.jobs.rl import load_rl_prompts


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
