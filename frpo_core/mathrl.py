"""Math RL: the authors' boxed-answer reward, MATH-style data with decontamination, and a shipped toy math set.

The paper's math setting trains Qwen2.5-Math-7B with GRPO or FRPO on competition math and then fine-tunes it on code
(method.md §2.3, §3). Its reward is ``0.2·format + 0.8·correct`` in {0, 0.2, 0.8, 1}:

- format: the response contains exactly one ``\\boxed{...}``;
- correct: the (last) boxed answer is mathematically equivalent to the reference answer. The authors used
  understand-r1-zero's ``boxed_reward_fn`` (fast mode, 3 s timeout); here the published ``math-verify`` package
  decides equivalence, under its own per-answer timeouts and a hard wall-clock limit on top.

math-verify's timeouts use ``signal.alarm``: they work only in a main thread and cannot interrupt work stuck inside C
code (a huge integer power in sympy). So every comparison runs in a long-lived worker process (``python -I``) that
the reward kills and restarts when an answer overruns its limit: one pathological answer scores 0 for correctness and
cannot hang training.

The authors' data (``qwedsacf/competition_math``, Levels 3–5) is the full MATH set, train *and* test, so it very
likely contains MATH500 problems, the benchmark they report (method.md §2.4 item 9). :func:`load_math` therefore
removes every problem whose normalised text appears in MATH500 by default (§6.10) and says how many it removed.
"""

from __future__ import annotations

import json
import random
import re
import select
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value, concatenate_datasets, load_dataset

from frpo_core.data import NAMED, fixed_subset, load_source

MATH_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
"""The authors' system prompt for math RL and for MATH500 evaluation (method.md §2.3, §3)."""

FORMAT_WEIGHT = 0.2
CORRECT_WEIGHT = 0.8
DEFAULT_TIMEOUT = 3.0
"""Seconds per answer, as the authors' verifier (method.md §2.3)."""

MATH_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)
"""The configs of ``EleutherAI/hendrycks_math`` (MATH with its train/test split kept): the hub id alone means all."""

_HENDRYCKS = "EleutherAI/hendrycks_math"

MATH_FEATURES = Features(
    {
        "prompt": List({"role": Value("string"), "content": Value("string")}),
        "problem": Value("string"),
        "solution": Value("string"),
        "answer": Value("string"),
        "level": Value("int64"),
        "type": Value("string"),
    }
)
"""The columns :func:`load_math` returns, typed once (a source's own ``level`` strings must not leak through)."""

# ---------------------------------------------------------------------------------------------------------------------
# Boxed answers and the reward


def boxed_answers(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}`` in ``text`` whose braces close, in order of their opening.

    Braces are matched by depth, so ``\\boxed{\\frac{1}{2}}`` yields ``\\frac{1}{2}``; escaped braces (``\\{``,
    ``\\}``, as in a set ``\\{1, 2\\}``) are text, not grouping. A boxed answer inside another counts as well, so
    ``\\boxed{\\boxed{1}}`` has two. An unclosed ``\\boxed{`` is not an answer.
    """
    answers = []
    for match in re.finditer(r"\\boxed\{", text):
        content = _braced(text, match.end())
        if content is not None:
            answers.append(content)
    return answers


def _braced(text: str, start: int) -> str | None:
    """The text from ``start`` (just after an opening brace) to its matching closing brace, or None if unclosed."""
    depth, i = 1, start
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2  # an escaped character (\{, \}, \\) never opens or closes a group
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """The last boxed answer (``\\boxed{...}`` or MATH's occasional ``\\fbox{...}``), as MATH's graders take it."""
    last, last_at = None, -1
    for match in re.finditer(r"\\(?:boxed|fbox)\{", text):
        content = _braced(text, match.end())
        if content is not None and match.start() > last_at:
            last, last_at = content, match.start()
    return last


def format_score(response: str) -> float:
    """1 if ``response`` has exactly one boxed answer, else 0: the authors' format reward (method.md §2.3)."""
    return 1.0 if len(boxed_answers(response)) == 1 else 0.0


def reference_answer(answer: str | None = None, solution: str | None = None) -> str:
    """The reference answer: ``answer`` when given (MATH500 has the column), else the last boxed answer of the
    ``solution`` (MATH's convention), else the whole solution."""
    if answer is not None and str(answer).strip():
        return str(answer).strip()
    if solution is None:
        raise ValueError("the math reward needs an 'answer' or a 'solution' column in the dataset")
    boxed = last_boxed(solution)
    return boxed.strip() if boxed is not None else solution.strip()


_WORKER = r"""
import json, sys
from math_verify import parse, verify

print("ready", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    seconds = request["timeout"]
    try:
        gold = parse(request["gold"], parsing_timeout=seconds)
        pred = parse(request["pred"], parsing_timeout=seconds)
        same = bool(gold) and bool(pred) and verify(gold, pred, timeout_seconds=seconds)
    except Exception:
        same = False
    print(json.dumps(bool(same)), flush=True)
"""


class MathVerifier:
    """Decides whether two answers are equivalent with ``math-verify``, each pair under a hard wall-clock limit.

    The comparison runs in a worker process (one per verifier, started on first use, stopped with the verifier or the
    interpreter). A pair that takes longer than ``timeout`` seconds counts as not equivalent and the worker is killed
    and restarted, so no answer can stall the caller for longer than that (plus the worker's start the next time).
    math-verify's own limits (whole seconds) are set to the same budget, so most slow answers stop inside the worker.
    Thread-safe: concurrent callers take turns.
    """

    name = "math-verify"

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, startup_timeout: float = 120.0) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout={timeout} must be > 0")
        from importlib.metadata import version

        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.version = version("math-verify")
        self._worker_holder: list[subprocess.Popen[str] | None] = [None]  # shared with the finalizer
        self._lock = threading.Lock()
        weakref.finalize(self, _stop, self._worker_holder)

    def equivalent(self, gold: str, pred: str) -> bool:
        """Whether ``pred`` is mathematically equivalent to ``gold`` (both LaTeX answers without ``$``)."""
        request = json.dumps(
            {"gold": f"$\\boxed{{{gold}}}$", "pred": f"$\\boxed{{{pred}}}$", "timeout": max(1, round(self.timeout))}
        )
        with self._lock:
            process = self._worker()
            try:
                process.stdin.write(request + "\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                self._restart()
                return False
            line = _readline(process, self.timeout)
            if line is None:
                self._restart()  # overran its limit (or died): kill it, the next pair gets a fresh worker
                return False
            return json.loads(line) is True

    def close(self) -> None:
        """Stop the worker process (a later call starts a new one)."""
        with self._lock:
            self._restart()

    def _worker(self) -> subprocess.Popen[str]:
        process = self._worker_holder[0]
        if process is None or process.poll() is not None:
            process = subprocess.Popen(
                [sys.executable, "-I", "-c", _WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
            if _readline(process, self.startup_timeout) != "ready":
                _stop([process])
                raise RuntimeError("the math-verify worker did not start; is math-verify installed (.[train])?")
            self._worker_holder[0] = process
        return process

    def _restart(self) -> None:
        _stop(self._worker_holder)
        self._worker_holder[0] = None


def _readline(process: subprocess.Popen[str], timeout: float) -> str | None:
    """One line of the worker's output within ``timeout`` seconds, or None (it overran, or died)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if ready:
            line = process.stdout.readline()
            return line.strip() if line else None


def _stop(holder: list[subprocess.Popen[str] | None]) -> None:
    process = holder[0]
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


class MathReward:
    """The authors' math reward as a TRL reward function: ``0.2·format + 0.8·correct`` (method.md §2.3).

    ``format`` is 1 when the response has exactly one ``\\boxed{...}``; ``correct`` is 1 when its last boxed answer
    is equivalent to the reference, decided by :class:`MathVerifier`. So a response scores 1 (one boxed answer, right),
    0.8 (right, but boxed more than once), 0.2 (one boxed answer, wrong) or 0 (no boxed answer, or several and the
    last wrong). Every prompt gets this reward (no task split): the reference comes from the dataset's ``answer``
    column when it has one, else from its ``solution`` (:func:`reference_answer`); both reach the function as TRL
    passes dataset columns as keyword arguments.

    The two parts are also logged apart, through TRL's ``log_metric``: ``math/accuracy`` (the share of sampled
    responses whose last boxed answer is right) and ``math/format`` (the share with exactly one box). The reward mixes
    them, and early in RL its rise is mostly format, so only the first says whether RL made the policy more accurate.
    """

    __name__ = "math"

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        format_weight: float = FORMAT_WEIGHT,
        correct_weight: float = CORRECT_WEIGHT,
    ) -> None:
        self.verifier = MathVerifier(timeout)
        self.format_weight = format_weight
        self.correct_weight = correct_weight

    def __call__(
        self,
        prompts: list[Any],
        completions: list[Any],
        answer: Sequence[str | None] | None = None,
        solution: Sequence[str | None] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        references = [
            reference_answer(answer[i] if answer is not None else None, solution[i] if solution is not None else None)
            for i in range(len(completions))
        ]
        parts = [self.parts(_text(completion), ref) for completion, ref in zip(completions, references, strict=True)]
        if log_metric is not None and parts:
            log_metric("math/format", sum(well_formed for well_formed, _ in parts) / len(parts))
            log_metric("math/accuracy", sum(correct for _, correct in parts) / len(parts))
        return [self.combine(well_formed, correct) for well_formed, correct in parts]

    def parts(self, response: str, reference: str) -> tuple[bool, bool]:
        """Whether ``response`` has exactly one boxed answer, and whether its last boxed answer is ``reference``."""
        boxed = boxed_answers(response)
        correct = bool(boxed) and self.verifier.equivalent(reference, last_boxed(response) or "")
        return len(boxed) == 1, correct

    def combine(self, well_formed: bool, correct: bool) -> float:
        """The reward of a response with these parts: ``format_weight·format + correct_weight·correct``."""
        return self.format_weight * float(well_formed) + self.correct_weight * float(correct)


def _text(message: Any) -> str:
    return message if isinstance(message, str) else message[-1]["content"]


# ---------------------------------------------------------------------------------------------------------------------
# MATH-style data


@dataclass(frozen=True)
class MathData:
    """A MATH-style prompt set and what decontamination removed from it."""

    dataset: Dataset
    removed: int
    reference: str | None  # what it was decontaminated against; None when it was not


def load_math(
    source: str | Path = "competition_math",
    *,
    levels: Sequence[int] | None = (3, 4, 5),
    split: str = "train",
    exclude: str | Path | None = "auto",
    limit: int | None = None,
    seed: int = 0,
    system_prompt: str | None = MATH_SYSTEM_PROMPT,
) -> MathData:
    """MATH-style problems as RL prompts: ``prompt`` (the system prompt, then the problem as the user turn),
    ``problem``, ``solution``, ``answer`` (the reference the reward compares with), ``level`` and ``type``.

    ``source``: a shipped or hub set by name (``"toy_math"``, ``"competition_math"``, ``"math500"``), a hub id
    (``qwedsacf/competition_math``; ``EleutherAI/hendrycks_math`` for all seven subjects of MATH with its own
    train/test split, or ``EleutherAI/hendrycks_math:algebra`` for one; ``HuggingFaceH4/MATH-500`` with
    ``split="test"``) or a local ``.jsonl``/``.json``/``.csv``/``.parquet`` file with columns ``problem`` and
    ``solution`` (or ``answer``), optionally ``level`` (``"Level 3"`` or 3) and ``type`` (or ``subject``); or GSM8K
    (``"gsm8k"``, columns ``question`` and ``answer``), whose rows have no level and are all kept.

    ``levels`` keeps those difficulty levels (the authors: 3–5); ``None`` keeps every row, one without a level too.
    ``exclude`` removes problems that appear in a reference set (:func:`decontaminate`): ``"auto"`` means MATH500
    (``"math500"``) for every source but the shipped synthetic sets, which cannot contain it; ``None`` keeps all.
    ``limit`` keeps a :func:`frpo_core.data.fixed_subset` of that many rows under ``seed``.
    """
    raw = _load_math_source(source, split)
    columns = set(raw.column_names)
    gsm8k = {"question", "answer"} <= columns and "problem" not in columns
    if gsm8k:  # word problems: no levels, and nothing of MATH500 to remove
        raw, levels = raw.map(_gsm8k_row, remove_columns=raw.column_names), None
    elif "problem" not in columns or not columns & {"solution", "answer"}:
        raise ValueError(
            f"source={str(source)!r} has columns {sorted(columns)}; expected 'problem' and 'solution' (or 'answer'), "
            "optionally 'level' and 'type' (or 'subject'), or GSM8K's 'question' and 'answer'"
        )
    dataset = raw.map(
        lambda row: _math_row(row, system_prompt),
        remove_columns=raw.column_names,
        features=MATH_FEATURES,
        desc="MATH rows",
    )
    if levels is not None:
        wanted = {int(level) for level in levels}
        dataset = dataset.filter(lambda row: row["level"] in wanted)
    if exclude == "auto":
        exclude = None if gsm8k or _is_shipped(source) else "math500"
    removed = 0
    if exclude is not None:
        dataset, removed = decontaminate(dataset, exclude)
    if limit is not None:
        dataset = fixed_subset(dataset, limit, seed)
    return MathData(dataset, removed, None if exclude is None else str(exclude))


def _gsm8k_row(row: dict[str, Any]) -> dict[str, Any]:
    """GSM8K as a MATH-style row: the question is the problem, the number after ``####`` the answer (commas
    dropped), the worked answer the solution. Downstream RL on GSM8K correctness uses it (the paper's downstream RL)."""
    worked, _, final = row["answer"].rpartition("####")
    return {"problem": row["question"], "solution": row["answer"], "answer": final.strip().replace(",", "") or worked}


def _is_shipped(source: str | Path) -> bool:
    named = None if isinstance(source, Path) else NAMED.get(str(source))
    return named is not None and not named.on_hub


def _load_math_source(source: str | Path, split: str) -> Dataset:
    text = str(source)
    if not isinstance(source, Path) and text == _HENDRYCKS:
        return concatenate_datasets([load_dataset(_HENDRYCKS, subject, split=split) for subject in MATH_SUBJECTS])
    return load_source(source, split=split)


def _math_row(row: dict[str, Any], system_prompt: str | None) -> dict[str, Any]:
    solution = row.get("solution") or ""
    answer = reference_answer(row.get("answer"), solution)
    turns = [{"role": "system", "content": system_prompt}] if system_prompt is not None else []
    return {
        "prompt": [*turns, {"role": "user", "content": row["problem"]}],
        "problem": row["problem"],
        "solution": solution,
        "answer": answer,
        "level": parse_level(row.get("level")),
        "type": row.get("type") or row.get("subject") or "",
    }


def parse_level(level: Any) -> int | None:
    """MATH's difficulty as an int: ``"Level 3"`` → 3, ``3`` → 3; ``"Level ?"`` (a few MATH rows) or none → None."""
    if level is None or isinstance(level, bool):
        return None
    if isinstance(level, int):
        return level
    match = re.fullmatch(r"\s*(?:level\s*)?(\d+)\s*", str(level), flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


_LATEX_SPACING = re.compile(r"\\[,;:! ]|\\q?quad\b|~|\\left\b|\\right\b|\$")


def normalize_problem(text: str) -> str:
    """A problem's text for matching copies: lowercase, ``\\dfrac``/``\\tfrac`` as ``\\frac``, LaTeX spacing
    (``\\,``, ``\\quad``, ``~``), ``\\left``/``\\right`` and ``$`` dropped, all whitespace removed."""
    text = text.lower().replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return re.sub(r"\s+", "", _LATEX_SPACING.sub(" ", text))


def decontaminate(
    dataset: Dataset,
    reference: str | Path | Dataset | Iterable[str],
    *,
    column: str = "problem",
    reference_split: str = "test",
) -> tuple[Dataset, int]:
    """``dataset`` without the rows whose ``column`` matches a reference problem, and how many rows were removed.

    Problems match when their :func:`normalize_problem` forms are equal, which catches verbatim copies with different
    spacing or ``$``/``\\dfrac`` conventions (MATH500 problems are verbatim MATH test problems). ``reference`` is a
    name or source :func:`frpo_core.data.load_source` reads (``"math500"``; a local file; a hub id, read at
    ``reference_split``) with a ``problem`` column, a ``Dataset`` with one, or the problem texts themselves.
    Decontaminating RL data against the benchmark is method.md §6.10; the authors' data skipped it (§2.4 item 9).
    """
    if isinstance(reference, str | Path):
        reference = load_source(reference, split=reference_split)
    if isinstance(reference, Dataset):
        if "problem" not in reference.column_names:
            raise ValueError(f"the reference set has columns {reference.column_names}; expected a 'problem' column")
        reference = reference["problem"]
    seen = {normalize_problem(problem) for problem in reference}
    kept = dataset.filter(lambda row: normalize_problem(row[column]) not in seen, desc="decontaminate")
    return kept, len(dataset) - len(kept)


# ---------------------------------------------------------------------------------------------------------------------
# The shipped toy set

TOY_MATH_FILE = "toy_math.jsonl"


def toy_math_rows(seed: int = 0) -> list[dict[str, Any]]:
    """The shipped ``toy_math`` set: the 100 sums of two one-digit numbers as boxed-answer problems, MATH's columns.

    Sized for the tiny offline model: it can learn all 100 sums in a warm start of a minute on a CPU, while a larger
    set of mixed kinds (200 sums, products and linear equations, measured) left it answering one or two numbers
    whatever the problem, so RL had nothing to sharpen. Difficulty maps onto MATH's scale so the authors' Levels 3–5
    filter keeps the whole set: level 3 is a sum without a carry (55 problems), level 4 one with a carry (45), which
    the warm start (:func:`frpo_core.rl.toy_math_warm_start_rows`) gets right only half the time, for RL to correct.
    Deterministic for a given ``seed`` (the row order); ``frpo_core/assets/toy_math.jsonl`` is ``toy_math_rows(0)``.
    """
    rows = [
        _toy_row(f"What is ${a} + {b}$?", f"${a} + {b} = {a + b}$.", a + b, 3 if a + b < 10 else 4)
        for a in range(10)
        for b in range(10)
    ]
    random.Random(seed).shuffle(rows)
    return rows


def _toy_row(problem: str, steps: str, answer: int, level: int) -> dict[str, Any]:
    return {
        "problem": problem,
        "solution": f"{steps} The answer is $\\boxed{{{answer}}}$.",
        "answer": str(answer),
        "level": f"Level {level}",
        "type": "Arithmetic",
    }


def write_toy_math(path: str | Path, seed: int = 0) -> Path:
    """Write :func:`toy_math_rows` to ``path`` as JSON lines (how the shipped asset was made)."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as handle:
        for row in toy_math_rows(seed):
            handle.write(json.dumps(row) + "\n")
    return path
