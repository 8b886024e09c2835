"""MATH-style data: local files and the hub's layouts, level filtering, decontamination against MATH500, GSM8K."""

from __future__ import annotations

import pytest
from datasets import Dataset

from frpo_core.math.data import MATH_SYSTEM_PROMPT, decontaminate, load_math, normalize_problem, parse_level

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


def test_the_presets_math_system_prompt_is_the_authors():
    from store.presets import MATH_SYSTEM_PROMPT as PRESET_PROMPT

    assert PRESET_PROMPT == MATH_SYSTEM_PROMPT
