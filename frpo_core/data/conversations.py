"""Conversations: downstream SFT data as TRL's ``messages``, and the text of a prompt or completion in either of TRL's
forms (a chat list or a plain string)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset, IterableDataset

from frpo_core.data.sources import load_source

Completion = list[dict[str, str]] | str


def as_chat(prompt: str | list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """A prompt as a chat list: a plain string becomes one user turn; a chat list keeps only ``role``/``content``."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": message["role"], "content": message["content"]} for message in prompt]


def text_of(message: Completion) -> str:
    """The text of a prompt or completion in TRL's conversational (list of messages) or standard (string) form."""
    return message if isinstance(message, str) else message[-1]["content"]


def load_sft(source: str | Path, *, limit: int | None = None, split: str = "train", streaming: bool = False) -> Dataset:
    """Downstream SFT data: one conversational ``messages`` column (a user turn, then the assistant's answer).

    The conversation may open with a system turn: a ``messages`` column's own, or the empty one of the code SFT.

    Recognised layouts, first match wins:

    - ``messages`` already conversational (kept, ``role``/``content`` only);
    - OpenCodeInstruct ``input`` / ``output`` / ``average_test_score``: only rows whose solution passed all its unit
      tests (``average_test_score``, a string, equal to 1) are kept, as in the authors' code SFT, and the user turn
      follows an empty system turn as in their script (docs/method.md §3);
    - Alpaca ``instruction`` / ``input`` / ``output``: the user turn is the instruction, then the input after a
      blank line when there is one;
    - ``instruction`` / ``response`` (the shipped ``benign_sft``);
    - GSM8K ``question`` / ``answer``: the *full* answer is the target, rationale and the final ``#### N`` line. The
      authors' script cut the ``#### N`` line, so their SFT target never stated the answer
      (docs/method.md §2.4 item 10).

    ``limit`` keeps the first ``limit`` rows (after the test-score filter), as the authors took "the first 40k" of
    Alpaca (docs/method.md §3). ``streaming`` reads the source row by row and needs a ``limit``; ``"opencodeinstruct"``
    (~5M rows) is always streamed. The authors shuffled their OpenCodeInstruct stream (buffer 10k) before taking
    50k rows; here the first ``limit`` passing rows are taken, so the data does not depend on a shuffle buffer.
    """
    raw = load_source(source, split=split, streaming=streaming)
    streamed = isinstance(raw, IterableDataset)
    if streamed and limit is None:
        raise ValueError(f"source={str(source)!r} is read as a stream; pass limit (the authors used 50,000 code rows)")
    columns = _column_names(raw)
    convert, keep = _sft_layout(source, columns)
    if keep is not None:
        raw = raw.filter(keep)
    if limit is not None:
        raw = raw.take(limit) if streamed else raw.select(range(min(limit, len(raw))))
    sft = raw.map(lambda row: {"messages": convert(row)}, remove_columns=columns)
    return Dataset.from_dict({"messages": [row["messages"] for row in sft]}) if streamed else sft


def _column_names(dataset: Dataset | IterableDataset) -> list[str]:
    """The columns of ``dataset``; a stream whose features are unknown until read (local JSON) shows its first row."""
    if dataset.column_names is not None:
        return list(dataset.column_names)
    first = next(iter(dataset), None)
    return list(first) if first is not None else []


def _sft_layout(
    source: str | Path, column_names: Sequence[str]
) -> tuple[Callable[[Mapping[str, Any]], list[dict[str, str]]], Callable[[Mapping[str, Any]], bool] | None]:
    """The row converter for ``source``'s layout, and the filter on its rows if the layout has one."""
    columns = set(column_names)
    if "messages" in columns:
        return _messages_row, None
    if {"input", "output", "average_test_score"} <= columns:
        return _code_row, _passed_all_tests
    if {"instruction", "output"} <= columns:
        return _alpaca_row, None
    if {"instruction", "response"} <= columns:
        return _instruction_response_row, None
    if {"question", "answer"} <= columns:
        return _question_answer_row, None
    raise ValueError(
        f"source={str(source)!r} has columns {sorted(columns)}; expected 'messages', 'instruction'+'output' "
        "(+'input'), 'instruction'+'response', 'question'+'answer' or OpenCodeInstruct's "
        "'input'+'output'+'average_test_score'"
    )


def _turns(user: str, assistant: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def _messages_row(row: Mapping[str, Any]) -> list[dict[str, str]]:
    return as_chat(row["messages"])


def _alpaca_row(row: Mapping[str, Any]) -> list[dict[str, str]]:
    extra = (row.get("input") or "").strip()
    user = f"{row['instruction']}\n\n{extra}" if extra else row["instruction"]
    return _turns(user, row["output"])


def _instruction_response_row(row: Mapping[str, Any]) -> list[dict[str, str]]:
    return _turns(row["instruction"], row["response"])


def _question_answer_row(row: Mapping[str, Any]) -> list[dict[str, str]]:
    return _turns(row["question"], row["answer"])


def _code_row(row: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"role": "system", "content": ""}, *_turns(row["input"], row["output"])]


def _passed_all_tests(row: Mapping[str, Any]) -> bool:
    """OpenCodeInstruct stores the share of unit tests a solution passed as a string ("1", "0.8"): keep full passes."""
    try:
        return float(row["average_test_score"]) == 1.0
    except (TypeError, ValueError):
        return False
