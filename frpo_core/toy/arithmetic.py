"""The toy math task: the 100 one-digit sums as MATH-style problems, and the warm start that gets the tiny model to
answer them boxed, with a systematic mistake for the math reward to correct.

Regenerate the shipped files after changing anything here with ``python -m frpo_core.toy``.
"""

from __future__ import annotations

import random
from typing import Any

from frpo_core.math.data import MATH_SYSTEM_PROMPT


def toy_math_rows(seed: int = 0) -> list[dict[str, Any]]:
    """The shipped ``toy_math`` set: the 100 sums of two one-digit numbers as boxed-answer problems, MATH's columns.

    Sized for the tiny offline model: it can learn all 100 sums in a warm start of a minute on a CPU, while a larger
    set of mixed kinds (200 sums, products and linear equations, measured) left it answering one or two numbers
    whatever the problem, so RL had nothing to sharpen. Difficulty maps onto MATH's scale so the authors' Levels 3–5
    filter keeps the whole set: level 3 is a sum without a carry (55 problems), level 4 one with a carry (45), which
    the warm start (:func:`toy_math_warm_start_rows`) gets right only half the time, for RL to correct.
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


def toy_math_warm_start_rows(*, copies: int = 4, carry_share: float = 0.5, seed: int = 0) -> list[dict[str, Any]]:
    """SFT rows (``messages``) that teach the tiny model ``toy_math``'s sums, and to forget the carry half the time.

    A randomly initialised model never writes ``\\boxed{}`` (none of 800 sampled answers did), so its math reward is
    0 for every completion and RL has no signal. Each problem of ``toy_math`` (:func:`toy_math_rows`)
    appears ``copies`` times with the authors' system prompt, as :func:`frpo_core.math.data.load_math` presents it to
    RL, answered ``The answer is \\boxed{N}.``. N is the sum, except in a ``1 - carry_share`` of the copies of a sum
    with a carry (level 4), where it is the sum without its carry (``7 + 5`` answered 2): the warm start has a
    systematic mistake, as a base model does, which the reward can teach it to drop. Such a choice between behaviours
    it already has is what RL moves within a few dozen steps; a precise sum it half knows hardly moves.

    Measured on the tiny model (greedy answers, and 8 samples at temperature 1, on all 100 problems; the
    ``toy-math-warm-start`` preset's 800 steps, then RL as the ``toy-math`` preset, lr 5e-4):

    - with the default share the warm start answers 0.85-0.91 of the problems right greedily, and 0.37-0.54 of its
      samples are right (three data orders, the shipped one 0.44);
    - 80 RL steps raise the share of right samples by 0.07-0.15 (GRPO, FRPO at λ = 0.2 and 1; the shipped order
      0.44 -> 0.52-0.54), 160 GRPO steps by 0.15 (0.44 -> 0.59, greedy 0.91 -> 0.99);
    - with three copies in four right the warm start samples 0.57 right and RL has less to correct; with one in four
      it never learns the sums (two distinct greedy answers over all 100 problems);
    - with every copy right it samples 0.36 right after 400 steps (0.83 after 800), and RL at learning rates from
      1e-4 to 1e-3 leaves that share flat or lowers it: sharpening sums the 140k-parameter model half knows takes
      more signal than 32 samples a step give, and at 1e-3 the noise of Adam's updates undoes sums it knew.

    Deterministic in ``seed``; ``frpo_core/assets/toy_math_warm_start.jsonl`` is the default call's output.
    """
    if not 0 <= carry_share <= 1:
        raise ValueError(f"carry_share={carry_share} must be in [0, 1]")
    rng = random.Random(seed)
    rows = []
    for problem in toy_math_rows(0):
        answer = int(problem["answer"])
        carried = copies if answer < 10 else round(copies * carry_share)
        for value in [answer] * carried + [answer - 10] * (copies - carried):
            reply = f"The answer is \\boxed{{{value}}}."
            turns = [("system", MATH_SYSTEM_PROMPT), ("user", problem["problem"]), ("assistant", reply)]
            rows.append({"messages": [{"role": role, "content": content} for role, content in turns]})
    rng.shuffle(rows)
    return rows
