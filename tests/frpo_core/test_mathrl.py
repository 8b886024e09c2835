"""Math RL: the 0.2·format + 0.8·correct reward, MATH-style loaders with level filtering and decontamination, and
the shipped toy math set."""

from __future__ import annotations

import json
import time
from importlib.resources import files

import pytest
from datasets import Dataset

from frpo_core.mathrl import (
    MATH_SYSTEM_PROMPT,
    MathReward,
    boxed_answers,
    decontaminate,
    format_score,
    last_boxed,
    load_math,
    normalize_problem,
    parse_level,
    reference_answer,
    toy_math_rows,
)
from frpo_core.rewards import REWARD_NAMES, build_rewards, reward_identities


@pytest.fixture(scope="module")
def reward():
    math_reward = MathReward(timeout=3.0)
    yield math_reward
    math_reward.verifier.close()


def said(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


SOLUTION = "Half of the cake is left, so the answer is $\\boxed{\\frac{1}{2}}$."


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("So the share is $\\boxed{\\frac{1}{2}}$.", 1.0),  # one boxed answer, right
        ("That is $\\boxed{0.5}$.", 1.0),  # right in another form: math-verify decides equivalence
        ("First $\\boxed{3}$, no: $\\boxed{\\dfrac{1}{2}}$.", 0.8),  # right, but boxed twice: no format credit
        ("So the share is $\\boxed{\\frac{1}{3}}$.", 0.2),  # one boxed answer, wrong
        ("The answer is 1/2.", 0.0),  # right, but never boxed
        ("$\\boxed{\\frac{1}{2}}$ or $\\boxed{3}$", 0.0),  # two boxed answers, the last wrong
    ],
)
def test_reward_values(reward, response, expected):
    assert reward(["p"], [said(response)], solution=[SOLUTION]) == [expected]


def test_reward_prefers_the_answer_column_and_takes_trl_keyword_columns(reward):
    completions = [said("$\\boxed{12}$"), said("$\\boxed{13}$"), "plain text $\\boxed{x+1}$"]
    rewards = reward(
        ["a", "b", "c"],
        completions,
        answer=["12", "12", "1+x"],
        solution=["wrong \\boxed{99}", "wrong \\boxed{99}", ""],
        level=[3, 3, 4],
        type=["Algebra"] * 3,
    )
    assert rewards == [1.0, 0.2, 1.0]


def test_reward_logs_accuracy_and_format_apart_through_trls_log_metric(reward):
    """The reward mixes format and correctness; each is also logged as its share of the batch."""
    logged: dict[str, float] = {}
    completions = [said("$\\boxed{12}$"), said("$\\boxed{13}$"), said("$\\boxed{3}$ then $\\boxed{12}$"), said("12")]
    rewards = reward(["p"] * 4, completions, answer=["12"] * 4, log_metric=logged.__setitem__)
    assert rewards == [1.0, 0.2, 0.8, 0.0]
    assert logged == {"math/accuracy": 0.5, "math/format": 0.5}  # right: the 1st and 3rd; one box: the 1st and 2nd


def test_a_pathological_answer_returns_within_the_time_limit(reward):
    reward(["p"], [said("$\\boxed{1}$")], answer=["1"])  # the worker is up
    start = time.monotonic()
    assert reward(["p"], [said("$\\boxed{9^{9^{9^{9}}}}$")], answer=["5"]) == [0.2]
    assert time.monotonic() - start < reward.verifier.timeout + 1.0


def test_the_hard_limit_kills_a_comparison_that_math_verify_would_let_run():
    # math-verify's own limits are whole seconds (1 here); the verifier's hard limit stops the pair at 0.3 s
    quick = MathReward(timeout=0.3)
    try:
        assert quick(["p"], [said("$\\boxed{2}$")], answer=["2"]) == [1.0]  # the worker is up
        start = time.monotonic()
        assert quick(["p"], [said("$\\boxed{(10^{6})!}$")], answer=["5"]) == [0.2]
        assert time.monotonic() - start < 0.9
        assert quick(["p"], [said("$\\boxed{2}$")], answer=["2"]) == [1.0]  # a fresh worker takes over
    finally:
        quick.verifier.close()


def test_boxed_answers_match_nested_and_escaped_braces():
    assert boxed_answers("$\\boxed{\\frac{1}{2}}$") == ["\\frac{1}{2}"]
    assert boxed_answers("$\\boxed{\\{1, 2\\}}$") == ["\\{1, 2\\}"]
    assert boxed_answers("\\boxed{\\boxed{1}}") == ["\\boxed{1}", "1"]  # nested boxes are two
    assert boxed_answers("\\boxed{1} and \\boxed{2") == ["1"]  # an unclosed box is no answer
    assert boxed_answers("\\boxed{a}\\boxed{b}") == ["a", "b"]
    assert [format_score(t) for t in ("\\boxed{1}", "\\boxed{1}\\boxed{1}", "1", "\\boxed{\\boxed{1}}")] == [1, 0, 0, 0]
    assert last_boxed("\\fbox{1} then \\boxed{x^{2}}") == "x^{2}"
    assert last_boxed("no box") is None


def test_reference_answer():
    assert reference_answer("  7 ", "\\boxed{8}") == "7"
    assert reference_answer(None, "So $\\boxed{3}$, i.e. $\\boxed{\\frac{6}{2}}$.") == "\\frac{6}{2}"
    assert reference_answer("", "no box here") == "no box here"
    with pytest.raises(ValueError, match="'answer' or a 'solution'"):
        reference_answer(None, None)


def test_build_rewards_registers_math():
    assert "math" in REWARD_NAMES
    (math_reward,) = build_rewards(["math"])
    try:
        assert isinstance(math_reward, MathReward) and math_reward.__name__ == "math"
        assert reward_identities([math_reward]) == {"math": f"math-verify@{math_reward.verifier.version}"}
    finally:
        math_reward.verifier.close()


# ---------------------------------------------------------------------------------------------------------------------
# Loaders

ROWS = [
    {"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$.", "level": "Level 1", "type": "Prealgebra"},
    {"problem": "Find $x$ if $2x = 6$.", "solution": "$x = \\boxed{3}$.", "level": "Level 3", "type": "Algebra"},
    {"problem": "Compute $\\dfrac{9}{3}$.", "solution": "$\\boxed{3}$", "level": "Level 4", "type": "Prealgebra"},
    {"problem": "How many primes are below 10?", "solution": "$\\boxed{4}$", "level": "Level 5", "type": "Number"},
    {"problem": "What is $2^{10}$?", "solution": "$\\boxed{1024}$", "level": "Level ?", "type": "Algebra"},
]
# A MATH500-format reference (problem, solution, answer, subject, level as int, unique_id) sharing two problems
# with ROWS, written with other spacing and fraction conventions.
MATH500_ROWS = [
    {"problem": "Find $x$  if $2x=6$.", "answer": "3", "subject": "Algebra", "level": 3, "unique_id": "a/1.json"},
    {"problem": "Compute $\\frac{9}{3}$.", "answer": "3", "subject": "Prealgebra", "level": 4, "unique_id": "b/2.json"},
    {"problem": "An unrelated problem.", "answer": "0", "subject": "Geometry", "level": 2, "unique_id": "c/3.json"},
]


def write(path, rows, fmt):
    dataset = Dataset.from_list(rows)
    {"jsonl": dataset.to_json, "csv": dataset.to_csv, "parquet": dataset.to_parquet}[fmt](str(path))
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_load_math_from_local_files_filters_levels_and_decontaminates(tmp_path, fmt):
    source = write(tmp_path / f"math.{fmt}", ROWS, fmt)
    reference = write(tmp_path / "math500.jsonl", MATH500_ROWS, "jsonl")

    data = load_math(source, exclude=None)
    assert data.removed == 0 and data.reference is None
    assert data.dataset["level"] == [3, 4, 5]  # the authors' Levels 3–5; "Level 1" and "Level ?" dropped
    row = data.dataset[0]
    assert row["prompt"] == [
        {"role": "system", "content": MATH_SYSTEM_PROMPT},
        {"role": "user", "content": "Find $x$ if $2x = 6$."},
    ]
    assert row["answer"] == "3" and row["type"] == "Algebra" and row["solution"] == "$x = \\boxed{3}$."

    clean = load_math(source, exclude=reference)
    assert clean.removed == 2 and clean.reference == str(reference)
    assert clean.dataset["problem"] == ["How many primes are below 10?"]

    everything = load_math(source, levels=None, exclude=reference)
    assert len(everything.dataset) == 3 and everything.removed == 2
    assert everything.dataset["level"] == [1, 5, None]


def test_load_math_reads_math500_layout_with_int_levels_and_answers(tmp_path):
    source = write(tmp_path / "math500.jsonl", MATH500_ROWS, "jsonl")
    data = load_math(source, levels=(2, 3), exclude=None, system_prompt=None)
    assert data.dataset["level"] == [3, 2] and data.dataset["type"] == ["Algebra", "Geometry"]
    assert data.dataset["answer"] == ["3", "0"]
    assert data.dataset[0]["prompt"] == [{"role": "user", "content": "Find $x$  if $2x=6$."}]


def test_load_math_names_the_columns_it_needs(tmp_path):
    source = write(tmp_path / "bad.jsonl", [{"text": "q", "label": "a"}], "jsonl")
    with pytest.raises(ValueError, match="expected 'problem' and 'solution'.*GSM8K's 'question' and 'answer'"):
        load_math(source, exclude=None)


def test_gsm8k_problems_keep_the_final_answer_and_every_row(tmp_path):
    rows = [
        {"question": "Ann has 3 apples and buys 4. How many?", "answer": "3 + 4 = 7\n#### 7"},
        {"question": "What is 1,000 + 234?", "answer": "It is 1,234.\n#### 1,234"},
    ]
    data = load_math(write(tmp_path / "gsm8k.jsonl", rows, "jsonl"))  # levels 3-5 by default: GSM8K has none
    assert data.removed == 0 and data.reference is None  # nothing of MATH500 to remove, nothing downloaded
    assert data.dataset["answer"] == ["7", "1234"] and data.dataset["problem"][0].startswith("Ann has")
    assert data.dataset["prompt"][0][-1] == {"role": "user", "content": rows[0]["question"]}


def test_load_math_limit_is_a_fixed_subset():
    first = load_math("toy_math", limit=10, seed=3).dataset["problem"]
    assert first == load_math("toy_math", limit=10, seed=3).dataset["problem"] and len(first) == 10


def test_decontaminate_returns_the_count():
    dataset = Dataset.from_list([{"problem": row["problem"]} for row in ROWS])
    kept, removed = decontaminate(dataset, ["what is $1 + 1$ ?", "Compute \\tfrac{9}{3}."])
    assert removed == 2 and "What is $1+1$?" not in kept["problem"]
    kept, removed = decontaminate(dataset, Dataset.from_list(MATH500_ROWS))
    assert removed == 2
    with pytest.raises(ValueError, match="'problem' column"):
        decontaminate(dataset, Dataset.from_list([{"question": "x"}]))


def test_normalize_problem_and_parse_level():
    assert normalize_problem("Find  $x$\\,if\n$\\left(2x\\right) = 6$.") == normalize_problem("find x if (2x)=6.")
    assert [parse_level(v) for v in ("Level 3", 4, "level 5", "Level ?", None, "7")] == [3, 4, 5, None, None, 7]


# ---------------------------------------------------------------------------------------------------------------------
# The shipped toy set


def test_the_shipped_toy_math_set_is_the_generated_one():
    text = files("frpo_core").joinpath("assets", "toy_math.jsonl").read_text(encoding="utf-8")
    shipped = [json.loads(line) for line in text.splitlines()]
    assert shipped == toy_math_rows(0)
    assert len(shipped) == 100 and len({row["problem"] for row in shipped}) == 100
    assert all(last_boxed(row["solution"]) == row["answer"] for row in shipped)
    carries = [row for row in shipped if int(row["answer"]) >= 10]
    assert len(carries) == 45 and {row["level"] for row in carries} == {"Level 4"}
    assert toy_math_rows(1) != shipped and sorted(map(str, toy_math_rows(1))) == sorted(map(str, shipped))


def test_the_toy_arith_benchmark_asks_the_toy_math_problems():
    text = files("frpo_core").joinpath("assets", "lm_eval_tasks", "toy_arith", "toy_arith.jsonl").read_text("utf-8")
    asked = [json.loads(line) for line in text.splitlines()]
    assert asked == [{"question": row["problem"], "answer": row["answer"]} for row in toy_math_rows(0)]


def test_load_toy_math_offline_keeps_every_problem(reward):
    data = load_math("toy_math")  # "auto" decontamination skips shipped synthetic sets: no hub needed
    assert len(data.dataset) == 100 and data.removed == 0 and data.reference is None
    assert sorted(set(data.dataset["level"])) == [3, 4]
    assert max(len(answer) for answer in data.dataset["answer"]) <= 2  # within the tiny model's reach
    sample = data.dataset.select(range(20))
    rewards = reward(sample["prompt"], [said(s) for s in sample["solution"]], answer=sample["answer"])
    assert rewards == [1.0] * 20  # each worked solution earns the full reward
