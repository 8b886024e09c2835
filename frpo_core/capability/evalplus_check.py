"""EvalPlus's own evaluator run inside the sandbox: how evaluate jobs score code sets in EvalPlus's format.

EvalPlus (the ``evalplus`` package, the ``bench-eval`` extra) judges a solution by running the problem's canonical
solution on ``base_input`` and ``plus_input`` for the expected outputs (``evalplus.gen.util.trusted_exec``), then the
solution on the same inputs in a forked child (``evalplus.eval.untrusted_check``, with its special oracles, ``atol``
and time limits). Its evaluator runs that child beside the evaluating process; here the whole check runs in
:mod:`frpo_core.capability.sandbox`, one sandbox per solution, so EvalPlus's evaluator never runs model code in the
worker. Each input's time limit is EvalPlus's (``max(1 s, 4 × the canonical solution's time)``, measured in the same
sandbox), and the sandbox's own limits (:func:`evalplus_limits`) are wide enough never to cut them short. One
adaptation: EvalPlus caps the child's memory from ``/proc/meminfo``, which the sandbox does not mount, so that cap (4
GiB) is the sandbox's own ``RLIMIT_AS``.

It needs problems in EvalPlus's format (``base_input``, ``plus_input``, ``atol`` besides the HumanEval fields), as
EvalPlus's released files and the shipped ``toy_humaneval`` have; a solution passes when base and plus both pass.
MBPP+'s special oracles and input conversion apply to problems whose ``task_id`` is MBPP+'s (``Mbpp/…``), with their
inputs as MBPP+'s file holds them (:func:`evalplus.data.mbpp.mbpp_serialize_inputs`); HumanEval+'s to the others.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from typing import Any

from frpo_core.capability.sandbox import SandboxLimits, SandboxResult, run_many

ORACLE_FIELDS = ("canonical_solution", "base_input", "plus_input", "atol")
"""What EvalPlus's evaluator needs of a problem beyond HumanEval's fields."""
EVALPLUS_FIELDS = ("task_id", "prompt", "entry_point", *ORACLE_FIELDS)
EVALPLUS_PART_SECONDS = 60 + 3
"""The longest ``untrusted_check`` gives one part (base or plus): its per-input limits capped at 60 s
(``EVALPLUS_TIMEOUT_PER_TASK``), 2 s for collecting the result and 1 s more before it kills the child."""
EVALPLUS_MEMORY_BYTES = 4 * 1024**3
"""EvalPlus's memory cap on the child (``EVALPLUS_MAX_MEMORY_BYTES``' default)."""

_CHECK = """\
import json
import evalplus.eval as evaluation
from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
from evalplus.gen.util import trusted_exec

evaluation.query_maximum_memory_bytes = lambda: None  # reads /proc/meminfo; the sandbox's RLIMIT_AS holds instead
problem, solution = json.loads(PAYLOAD)
dataset = "mbpp" if problem["task_id"].startswith("Mbpp/") else "humaneval"
if dataset == "mbpp":  # MBPP+'s file holds tuples, sets and complex numbers as JSON; get_mbpp_plus's conversion
    from evalplus.data.mbpp import mbpp_deserialize_inputs  # evalplus.data needs evalplus's own dependencies

    for part in ("base", "plus"):
        problem[part + "_input"] = mbpp_deserialize_inputs(problem["task_id"], problem[part + "_input"])
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


def evalplus_version() -> str | None:
    """The installed ``evalplus`` version, or None when its evaluator is not installed (the ``bench-eval`` extra)."""
    if find_spec("evalplus") is None:
        return None
    try:
        return version("evalplus")
    except PackageNotFoundError:
        return None


def evalplus_limits(ground_truth_seconds: float = 30.0) -> SandboxLimits:
    """Sandbox limits that leave EvalPlus's own time limits in charge: ``ground_truth_seconds`` for the expected
    outputs, then the longest ``untrusted_check`` allows for base and plus (:data:`EVALPLUS_PART_SECONDS`), in wall
    time and in CPU time of any one process; EvalPlus's memory cap (:data:`EVALPLUS_MEMORY_BYTES`)."""
    seconds = ground_truth_seconds + 2 * EVALPLUS_PART_SECONDS
    return SandboxLimits(cpu_seconds=int(seconds), memory_bytes=EVALPLUS_MEMORY_BYTES, wall_seconds=seconds)


def evalplus_verdicts(
    problems: Sequence[Mapping[str, Any]],
    solutions: Sequence[str],
    *,
    limits: SandboxLimits | None = None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """EvalPlus's verdict on each solution (a whole program defining the entry point), checked in the sandbox under
    ``limits`` (default :func:`evalplus_limits`): ``{"task_id", "base", "plus", "passed", "limit", "returncode",
    "seconds", "stderr"}`` with ``base``/``plus`` EvalPlus's ``"pass"``, ``"fail"`` or ``"timeout"`` (or None when
    the check itself did not finish: a sandbox limit, a crash; ``limit`` and ``stderr`` then say which)."""
    if len(problems) != len(solutions):
        raise ValueError(f"{len(problems)} problems but {len(solutions)} solutions")
    for problem in problems:
        missing = [field for field in EVALPLUS_FIELDS if field not in problem]
        if missing:
            raise ValueError(f"problem {problem.get('task_id')!r} lacks EvalPlus's fields {missing}")
    limits = limits or evalplus_limits()
    checks = [
        _CHECK.replace("PAYLOAD", repr(json.dumps([{f: p[f] for f in EVALPLUS_FIELDS}, solution])))
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
    return {
        "task_id": task_id,
        "base": base,
        "plus": plus,
        "passed": base == "pass" and plus == "pass",
        "limit": result.limit,
        "returncode": result.returncode,
        "seconds": round(result.wall_seconds, 3),
        "stderr": result.stderr[-1000:],
    }
