"""Boxed answers and whether two answers are equal: the math reward's verifier.

The authors used understand-r1-zero's ``boxed_reward_fn`` (fast mode, 3 s timeout); here the published
``math-verify`` package decides equivalence, under its own per-answer timeouts and a hard wall-clock limit on top.

math-verify's timeouts use ``signal.alarm``: they work only in a main thread and cannot interrupt work stuck inside C
code (a huge integer power in sympy). So every comparison runs in a long-lived worker process (``python -I``) that
the verifier kills and restarts when an answer overruns its limit: one pathological answer counts as not equivalent
and cannot hang training.
"""

from __future__ import annotations

import json
import re
import select
import subprocess
import sys
import threading
import time
import weakref

DEFAULT_TIMEOUT = 3.0
"""Seconds per answer, as the authors' verifier (docs/method.md §2.3)."""


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
    """1 if ``response`` has exactly one boxed answer, else 0: the authors' format reward (docs/method.md §2.3)."""
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
