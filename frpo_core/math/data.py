"""MATH-style data for math RL: the problems as prompts with their reference answers, and decontamination.

The paper's math setting trains Qwen2.5-Math-7B with GRPO or FRPO on competition math and then fine-tunes it on code
(docs/method.md §2.3, §3). The authors' data (``qwedsacf/competition_math``, Levels 3–5) is the full MATH set, train
*and* test, so it very likely contains MATH500 problems, the benchmark they report (docs/method.md §2.4 item 9).
:func:`load_math` therefore removes every problem whose normalised text appears in MATH500 by default
(docs/method.md §6.10) and says how many it removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value, concatenate_datasets, load_dataset

from frpo_core.data.sources import NAMED, fixed_subset, load_source
from frpo_core.math.verifier import reference_answer

MATH_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
"""The authors' system prompt for math RL and for MATH500 evaluation (docs/method.md §2.3, §3)."""

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
    ``limit`` keeps a :func:`frpo_core.data.sources.fixed_subset` of that many rows under ``seed``.
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
    name or source :func:`frpo_core.data.sources.load_source` reads (``"math500"``; a local file; a hub id, read at
    ``reference_split``) with a ``problem`` column, a ``Dataset`` with one, or the problem texts themselves.
    Decontaminating RL data against the benchmark is docs/method.md §6.10; the authors' data skipped it
    (docs/method.md §2.4 item 9).
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
