"""The toy math task: the 100 one-digit sums, and the warm start that answers them boxed with the carry dropped in its
share of the copies."""

from __future__ import annotations

import re

import pytest

from frpo_core.data.conversations import load_sft
from frpo_core.math.data import MATH_SYSTEM_PROMPT
from frpo_core.math.verifier import last_boxed
from frpo_core.toy.arithmetic import toy_math_rows, toy_math_warm_start_rows


def test_toy_math_is_the_hundred_one_digit_sums_with_a_carry_at_level_4():
    rows = toy_math_rows(0)
    assert len(rows) == 100 and len({row["problem"] for row in rows}) == 100
    assert all(last_boxed(row["solution"]) == row["answer"] for row in rows)
    carries = [row for row in rows if int(row["answer"]) >= 10]
    assert len(carries) == 45 and {row["level"] for row in carries} == {"Level 4"}
    assert toy_math_rows(1) != rows and sorted(map(str, toy_math_rows(1))) == sorted(map(str, rows))


def test_the_math_warm_start_answers_every_problem_boxed_with_the_authors_system_prompt():
    rows = toy_math_warm_start_rows()
    assert len(rows) == 400
    assert all(row["messages"][0] == {"role": "system", "content": MATH_SYSTEM_PROMPT} for row in rows)
    assert all(row["messages"][-1]["content"].startswith("The answer is \\boxed{") for row in rows)
    assert len(load_sft("toy_math_warm_start")) == 400


def _answers(rows: list[dict]) -> dict[str, list[int]]:
    """Each problem's warm-start answers, by problem."""
    answers: dict[str, list[int]] = {}
    for row in rows:
        reply = row["messages"][-1]["content"]
        answers.setdefault(row["messages"][1]["content"], []).append(int(reply.split("{")[1].split("}")[0]))
    return answers


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_the_warm_start_drops_the_carry_in_its_share_of_the_copies(share):
    answers = _answers(toy_math_warm_start_rows(carry_share=share, copies=4))
    assert len(answers) == 100
    for problem, given in answers.items():
        a, b = (int(n) for n in re.findall(r"\d", problem))
        if a + b < 10:  # no carry: always right
            assert given == [a + b] * 4
        else:  # a carry: right in the share, the carry dropped in the rest
            assert sorted(given) == sorted([a + b] * round(4 * share) + [a + b - 10] * round(4 * (1 - share)))


def test_the_warm_start_rejects_a_share_outside_zero_to_one():
    with pytest.raises(ValueError, match="carry_share=1.5 must be in"):
        toy_math_warm_start_rows(carry_share=1.5)
