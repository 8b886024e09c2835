"""EvalPlus's own evaluator, run in the sandbox, agrees with the project's scorer on known-good and known-bad
solutions of the shipped EvalPlus-format set (toy_humaneval), through the scoring function evaluate jobs use; which
scorer a job gets, and when EvalPlus's is refused."""

from __future__ import annotations

import hashlib
import json
import sys
from importlib.resources import files

import pytest

from frpo_core.capability.coding import choose_scorer, describe_scorer, load_code_problems, score_programs
from frpo_core.capability.evalplus_check import EVALPLUS_PART_SECONDS, evalplus_limits, evalplus_verdicts
from frpo_core.capability.sandbox import SandboxLimits

pytest.importorskip("evalplus.eval", reason="EvalPlus is in the bench-eval extra")

TOY_HUMANEVAL = files("frpo_core").joinpath("assets", "toy_humaneval.jsonl")
LIMITS = SandboxLimits(cpu_seconds=3, wall_seconds=30)
WRONG_ON_PLUS_ONLY = {  # pass the base inputs, fail the extra ones
    "ToyEval/0": "    return x + 2 if x < 10 else 0\n",
    "ToyEval/1": "    return sum(char.isupper() for char in text[:3])\n",
    "ToyEval/2": "    return [value for value in values if value % 2 == 0 and value > 0]\n",
    "ToyEval/3": "    return sum(values) / len(values) if len(values) > 1 else 0.0\n",
}


def toy_rows() -> list[dict]:
    with TOY_HUMANEVAL.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def plain_file(tmp_path) -> str:
    """toy_humaneval as plain HumanEval rows: the test code, none of EvalPlus's fields."""
    path = tmp_path / "plain.jsonl"
    keep = ("task_id", "prompt", "entry_point", "test")
    path.write_text("".join(json.dumps({key: row[key] for key in keep}) + "\n" for row in toy_rows()))
    return str(path)


@pytest.mark.slow  # about a minute: 40 sandboxed checks, the looping ones to their time limits
def test_both_scorers_of_the_job_agree_on_good_and_bad_solutions():
    rows = toy_rows()
    problems, _ = load_code_problems(str(TOY_HUMANEVAL))
    bodies = {
        "right": [row["canonical_solution"] for row in rows],
        "wrong": ["    return None\n"] * len(rows),
        "wrong on plus only": [WRONG_ON_PLUS_ONLY[row["task_id"]] for row in rows],
        "exits early": ["    import sys\n    sys.exit(0)\n"] * len(rows),
        "loops": ["    while True:\n        pass\n"] * len(rows),
    }
    expected = {"right": True, "wrong": False, "wrong on plus only": False, "exits early": False, "loops": False}
    for kind, body in bodies.items():
        solutions = [row["prompt"] + text for row, text in zip(rows, body, strict=True)]
        ours = score_programs(problems, solutions, "tests", limits=LIMITS, workers=2)
        theirs = score_programs(problems, solutions, "evalplus", limits=LIMITS, workers=2)
        passed = [[detail["passed"] for detail in score.details] for score in (ours, theirs)]
        assert passed[0] == passed[1] == [expected[kind]] * len(rows), kind
        assert ours.pass_at_1 == theirs.pass_at_1 == float(expected[kind]), kind
        if kind == "wrong on plus only":
            assert [(detail["base"], detail["plus"]) for detail in theirs.details] == [("pass", "fail")] * len(rows)


def test_evalplus_limits_leave_its_own_time_limits_in_charge():
    limits = evalplus_limits(ground_truth_seconds=10)
    assert limits.wall_seconds == 10 + 2 * EVALPLUS_PART_SECONDS and limits.cpu_seconds == int(limits.wall_seconds)
    assert limits.memory_bytes == 4 * 1024**3  # EvalPlus's cap on the child


def test_auto_takes_evalplus_for_its_format_and_the_tests_otherwise(tmp_path):
    evalplus_format, _ = load_code_problems(str(TOY_HUMANEVAL))
    plain, _ = load_code_problems(plain_file(tmp_path))
    assert choose_scorer("auto", evalplus_format) == "evalplus"
    assert choose_scorer("auto", plain) == choose_scorer("tests", evalplus_format) == "tests"
    assert choose_scorer("auto", [*evalplus_format, plain[0]]) == "tests"  # all of a set, or none
    assert describe_scorer("evalplus").startswith("evalplus 0.3.1 untrusted_check in ")
    assert describe_scorer("tests").startswith("frpo test-code in ")


def test_auto_takes_the_tests_when_evalplus_is_not_installed(monkeypatch):
    problems, _ = load_code_problems(str(TOY_HUMANEVAL))
    monkeypatch.setitem(sys.modules, "evalplus", None)  # how Python marks a package as not importable
    assert choose_scorer("auto", problems) == "tests"
    with pytest.raises(ValueError, match="bench-eval"):
        choose_scorer("evalplus", problems)


def test_auto_takes_the_tests_under_the_weak_sandbox_which_refuses_evalplus_fork(monkeypatch):
    problems, _ = load_code_problems(str(TOY_HUMANEVAL))
    monkeypatch.setenv("FRPO_SANDBOX", "weak")
    assert choose_scorer("auto", problems) == "tests"
    with pytest.raises(ValueError, match="FRPO_SANDBOX=weak"):
        choose_scorer("evalplus", problems)


def test_evalplus_is_refused_for_problems_without_its_fields_naming_the_fix(tmp_path):
    plain, _ = load_code_problems(plain_file(tmp_path))
    with pytest.raises(ValueError, match="ToyEval/0.*base_input.*code_scorer='tests'"):
        choose_scorer("evalplus", plain)
    with pytest.raises(ValueError, match="code_scorer='best'"):
        choose_scorer("best", plain)


def test_evalplus_fields_enter_the_dataset_hash_only_where_present(tmp_path):
    _, with_fields = load_code_problems(str(TOY_HUMANEVAL))
    _, without = load_code_problems(plain_file(tmp_path))
    keep = ("task_id", "prompt", "entry_point", "test")
    before = [{key: row[key] for key in keep} for row in toy_rows()]  # how a set hashed before the fields were read
    assert without == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest() != with_fields


def test_problems_without_evalplus_fields_are_refused():
    row = {key: value for key, value in toy_rows()[0].items() if key != "plus_input"}
    with pytest.raises(ValueError, match="plus_input"):
        evalplus_verdicts([row], ["def add_two(x):\n    return x + 2\n"])
