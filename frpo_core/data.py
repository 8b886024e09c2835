"""Datasets for FRPO's workflow: RL prompts labelled by task, downstream SFT conversations, fixed eval subsets.

Every loader takes one ``source`` and returns a ``datasets.Dataset`` in TRL's conversational format:

- a name from :data:`NAMED`: a small set shipped with the package (``"toy_safety"``, ``"benign_sft"``; fully offline)
  or a hub dataset the paper used (``"alpaca"``, ``"gsm8k"``);
- a local file (``.jsonl``, ``.json``, ``.csv``, ``.parquet``), loaded with ``datasets``' packaged builders;
- a hub id ``owner/name`` (optionally ``owner/name:config``), loaded with ``load_dataset``.

The shipped sets are synthetic and mild. ``safety_prompts.jsonl`` mixes generic harmful requests (task "safety")
with harmless requests of the same surface form (task "normal"), and ``benign_sft.jsonl`` is benign SFT data with
those surface forms too, so that downstream SFT on it can erode refusals through shared features (method.md §7).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from datasets import Dataset, load_dataset

TASKS = ("safety", "normal")
"""Prompt tasks: "safety" prompts get the safety reward, "normal" ones the helpfulness reward (method.md §2.3)."""

LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
"""File suffix → ``datasets`` packaged builder for local files."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.-]+)?$")


@dataclass(frozen=True)
class NamedSource:
    """A dataset known by name: a file shipped in ``frpo_core/assets`` or a dataset on the hub."""

    location: str  # asset file name, or hub id
    on_hub: bool = False
    config: str | None = None
    description: str = ""


NAMED: dict[str, NamedSource] = {
    "toy_safety": NamedSource(
        "safety_prompts.jsonl", description="120 synthetic prompts: 60 generic harmful (safety), 60 harmless (normal)"
    ),
    "benign_sft": NamedSource("benign_sft.jsonl", description="~200 benign instruction/response pairs"),
    "alpaca": NamedSource("tatsu-lab/alpaca", on_hub=True, description="the paper's Alpaca downstream SFT (§3)"),
    "gsm8k": NamedSource("openai/gsm8k", on_hub=True, config="main", description="the paper's GSM8K downstream SFT"),
}
"""Datasets by name. The shipped ones are what tests and the laptop path use; the hub ones are the paper's."""


def load_source(source: str | Path, *, split: str = "train") -> Dataset:
    """Load ``source`` as it is stored (no column normalisation): a :data:`NAMED` set, a local file or a hub id.

    A string that is not a name, an existing file or an ``owner/name`` hub id raises ``ValueError`` naming the
    choices, so a typo fails before anything (a download, a training job) starts.
    """
    text = str(source)
    if not isinstance(source, Path) and text in NAMED:
        named = NAMED[text]
        if named.on_hub:
            return load_dataset(named.location, named.config, split=split)
        return _load_local(Path(str(files("frpo_core").joinpath("assets", named.location))))
    path = Path(text)
    if path.suffix.lower() in LOCAL_BUILDERS or path.exists() or isinstance(source, Path):
        return _load_local(path)
    if _HUB_ID.match(text):
        hub_id, _, config = text.partition(":")
        return load_dataset(hub_id, config or None, split=split)
    raise ValueError(
        f"source={text!r} is neither a named dataset ({', '.join(sorted(NAMED))}), a local file "
        f"({', '.join(LOCAL_BUILDERS)}) nor a hub id 'owner/name[:config]'"
    )


def _load_local(path: Path) -> Dataset:
    """A local file through ``datasets``' packaged builder for its suffix (one split, all rows)."""
    builder = LOCAL_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise ValueError(f"source={str(path)!r}: unsupported file type; use one of {', '.join(LOCAL_BUILDERS)}")
    if not path.is_file():
        raise ValueError(f"source={str(path)!r}: no such file")
    return load_dataset(builder, data_files=str(path), split="train")


def fixed_subset(dataset: Dataset, n: int, seed: int) -> Dataset:
    """``n`` rows of ``dataset`` chosen once from ``seed`` and kept in their original order.

    Evaluation subsets must be fixed per run, not resampled at every step: the authors' HarmBench callback drew a new
    100-of-200 subset with ``Random(seed + step)`` at each evaluation, which alone adds about ±5 points of noise to
    the curve (method.md §2.4 item 12, §6.10). The choice depends only on ``(len(dataset), n, seed)``. With
    ``n >= len(dataset)`` the whole dataset is returned.
    """
    if n < 0:
        raise ValueError(f"n={n} must be >= 0")
    if n >= len(dataset):
        return dataset
    indices = sorted(random.Random(seed).sample(range(len(dataset)), n))
    return dataset.select(indices)


def load_prompts(
    source: str | Path, *, task: str | None = None, limit: int | None = None, seed: int = 0, split: str = "train"
) -> Dataset:
    """RL / evaluation prompts: a conversational ``prompt`` column, ``task`` ("safety" | "normal") and ``category``.

    ``prompt`` may be stored as a plain string or as a chat list (the authors' parquet); both become
    ``[{"role": "user", "content": ...}]`` (a chat list is kept, only its ``role``/``content`` keys). ``task`` comes
    from a ``task`` column or, as in the authors' data, from ``ability``: ``"refusal"`` marks a harmless prompt (task
    "normal"; the label names the behaviour to *avoid*, over-refusal) and any other ability (wildjailbreak, rainbow,
    aegis) a harmful one (task "safety"). ``category`` is the ``category`` column or else the ``ability``, when either
    exists. ``task`` filters to one task; ``limit`` keeps a :func:`fixed_subset` of that many rows under ``seed``.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task={task!r} must be one of {TASKS} or None")
    raw = load_source(source, split=split)
    columns = set(raw.column_names)
    if "prompt" not in columns or not columns & {"task", "ability"}:
        raise ValueError(
            f"source={str(source)!r} needs a 'prompt' column and a 'task' or 'ability' column; it has {sorted(columns)}"
        )
    dataset = raw.map(_normalise_prompt_row, remove_columns=raw.column_names)
    if "category" not in columns and "ability" not in columns:
        dataset = dataset.remove_columns("category")
    if task is not None:
        dataset = dataset.filter(lambda row: row["task"] == task)
    return dataset if limit is None else fixed_subset(dataset, limit, seed)


def _normalise_prompt_row(row: Mapping[str, Any]) -> dict[str, Any]:
    task = row.get("task")
    if task is None and row.get("ability") is not None:
        task = "normal" if row["ability"] == "refusal" else "safety"
    if task not in TASKS:
        raise ValueError(f"task={task!r} in the data must be one of {TASKS}")
    category = row.get("category") or row.get("ability") or ""
    return {"prompt": _as_chat(row["prompt"]), "task": task, "category": category}


def _as_chat(prompt: str | list[Mapping[str, Any]]) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": message["role"], "content": message["content"]} for message in prompt]


def load_sft(source: str | Path, *, limit: int | None = None, split: str = "train") -> Dataset:
    """Downstream SFT data: one conversational ``messages`` column (a user turn, then the assistant's answer).

    Recognised layouts, first match wins:

    - ``messages`` already conversational (kept, ``role``/``content`` only);
    - Alpaca ``instruction`` / ``input`` / ``output``: the user turn is the instruction, then the input after a
      blank line when there is one;
    - ``instruction`` / ``response`` (the shipped ``benign_sft``);
    - GSM8K ``question`` / ``answer``: the *full* answer is the target, rationale and the final ``#### N`` line. The
      authors' script cut the ``#### N`` line, so their SFT target never stated the answer (method.md §2.4 item 10).

    ``limit`` keeps the first ``limit`` rows, as the authors took "the first 40k" of Alpaca (method.md §3).
    """
    raw = load_source(source, split=split)
    if limit is not None:
        raw = raw.select(range(min(limit, len(raw))))
    columns = set(raw.column_names)
    if "messages" in columns:
        convert = _messages_row
    elif {"instruction", "output"} <= columns:
        convert = _alpaca_row
    elif {"instruction", "response"} <= columns:
        convert = _instruction_response_row
    elif {"question", "answer"} <= columns:
        convert = _question_answer_row
    else:
        raise ValueError(
            f"source={str(source)!r} has columns {sorted(columns)}; expected 'messages', 'instruction'+'output' "
            "(+'input'), 'instruction'+'response' or 'question'+'answer'"
        )
    return raw.map(lambda row: {"messages": convert(row)}, remove_columns=raw.column_names)


def _turns(user: str, assistant: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def _messages_row(row: Mapping[str, Any]) -> list[dict[str, str]]:
    return _as_chat(row["messages"])


def _alpaca_row(row: Mapping[str, Any]) -> list[dict[str, str]]:
    extra = (row.get("input") or "").strip()
    user = f"{row['instruction']}\n\n{extra}" if extra else row["instruction"]
    return _turns(user, row["output"])


def _instruction_response_row(row: Mapping[str, Any]) -> list[dict[str, str]]:
    return _turns(row["instruction"], row["response"])


def _question_answer_row(row: Mapping[str, Any]) -> list[dict[str, str]]:
    return _turns(row["question"], row["answer"])
