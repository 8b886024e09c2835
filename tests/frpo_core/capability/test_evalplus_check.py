"""EvalPlus's own evaluator, run in the sandbox, agrees with the project's scorer on known-good and known-bad
solutions of the shipped EvalPlus-format set (toy_humaneval)."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from frpo_core.capability.coding import load_code_problems, score_code
from frpo_core.capability.evalplus_check import evalplus_verdicts
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


@pytest.mark.slow  # about a minute: 40 sandboxed checks, the looping ones to their time limits
def test_evalplus_and_the_project_scorer_agree_on_good_and_bad_solutions():
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
        ours = [detail["passed"] for detail in score_code(problems, solutions, limits=LIMITS, workers=2).details]
        theirs = evalplus_verdicts(rows, solutions, limits=LIMITS, workers=2)
        assert ours == [verdict["passed"] for verdict in theirs] == [expected[kind]] * len(rows), kind
        if kind == "wrong on plus only":
            assert [(verdict["base"], verdict["plus"]) for verdict in theirs] == [("pass", "fail")] * len(rows)


def test_problems_without_evalplus_fields_are_refused():
    row = {key: value for key, value in toy_rows()[0].items() if key != "plus_input"}
    with pytest.raises(ValueError, match="plus_input"):
        evalplus_verdicts([row], ["def add_two(x):\n    return x + 2\n"])
