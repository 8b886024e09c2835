"""EvalPlus's own evaluator run inside the sandbox: a second opinion on :func:`frpo_core.capability.coding.score_code`.

EvalPlus (the ``evalplus`` package, the ``bench-eval`` extra) judges a solution by running the problem's canonical
solution on ``base_input`` and ``plus_input`` for the expected outputs (``evalplus.gen.util.trusted_exec``), then the
solution on the same inputs in a forked child (``evalplus.eval.untrusted_check``, with its special oracles, ``atol``
and time limits). Its evaluator runs that child beside the evaluating process; here the whole check runs in
:mod:`frpo_core.capability.sandbox`, one sandbox per solution, so EvalPlus's evaluator never runs model code in the
worker. One adaptation: EvalPlus caps the child's memory from ``/proc/meminfo``, which the sandbox does not mount, so
that cap is left to the sandbox's own ``RLIMIT_AS``.

It needs problems in EvalPlus's format (``base_input``, ``plus_input``, ``atol`` besides the HumanEval fields), as
EvalPlus's released files and the shipped ``toy_humaneval`` have; a solution passes when base and plus both pass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from frpo_core.capability.sandbox import SandboxLimits, SandboxResult, run_many

EVALPLUS_FIELDS = ("task_id", "prompt", "canonical_solution", "entry_point", "base_input", "plus_input", "atol")

_CHECK = """\
import json
import evalplus.eval as evaluation
from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
from evalplus.gen.util import trusted_exec

evaluation.query_maximum_memory_bytes = lambda: None  # reads /proc/meminfo; the sandbox's RLIMIT_AS holds instead
problem, solution, dataset = json.loads(PAYLOAD)
reference = problem["prompt"] + problem["canonical_solution"]
not_none = dataset == "mbpp" and problem["entry_point"] in MBPP_OUTPUT_NOT_NONE_TASKS
verdict = {}
for part in ("base", "plus"):
    inputs = problem[part + "_input"]
    expected, seconds = trusted_exec(
        reference, inputs, problem["entry_point"], record_time=True, output_not_none=not_none
    )
    verdict[part], _ = evaluation.untrusted_check(
        dataset, solution, inputs, problem["entry_point"], expected=expected, atol=problem["atol"], ref_time=seconds
    )
print(json.dumps(verdict))
"""


def evalplus_verdicts(
    problems: Sequence[Mapping[str, Any]],
    solutions: Sequence[str],
    *,
    dataset: str = "humaneval",
    limits: SandboxLimits | None = None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """EvalPlus's verdict on each solution (a whole program defining the entry point), checked in the sandbox:
    ``{"task_id", "base", "plus", "passed"}`` with ``base``/``plus`` EvalPlus's ``"pass"``, ``"fail"`` or
    ``"timeout"`` (or None when the check itself did not finish: a limit, a crash). ``dataset`` is ``"humaneval"`` or
    ``"mbpp"`` (EvalPlus's special oracles)."""
    if len(problems) != len(solutions):
        raise ValueError(f"{len(problems)} problems but {len(solutions)} solutions")
    if dataset not in ("humaneval", "mbpp"):
        raise ValueError(f"dataset={dataset!r} must be 'humaneval' or 'mbpp'")
    for problem in problems:
        missing = [field for field in EVALPLUS_FIELDS if field not in problem]
        if missing:
            raise ValueError(f"problem {problem.get('task_id')!r} lacks EvalPlus's fields {missing}")
    limits = limits or SandboxLimits()
    checks = [
        _CHECK.replace("PAYLOAD", repr(json.dumps([{f: p[f] for f in EVALPLUS_FIELDS}, solution, dataset])))
        for p, solution in zip(problems, solutions, strict=True)
    ]
    results = run_many(checks, limits=limits, workers=workers)
    return [_verdict(problem["task_id"], result) for problem, result in zip(problems, results, strict=True)]


def _verdict(task_id: str, result: SandboxResult) -> dict[str, Any]:
    lines = result.stdout.strip().splitlines()
    try:
        verdict = json.loads(lines[-1]) if result.ok and lines else {}
    except json.JSONDecodeError:
        verdict = {}
    base, plus = verdict.get("base"), verdict.get("plus")
    return {"task_id": task_id, "base": base, "plus": plus, "passed": base == "pass" and plus == "pass"}
