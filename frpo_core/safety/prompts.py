"""Safety prompts labelled by task: RL prompts and evaluation sets, HarmBench and StrongREJECT included.

Every loader returns TRL's conversational ``prompt`` column with ``task`` ("safety" | "normal") and ``category``, the
columns the safety and helpfulness rewards and the safety evaluation read. Each recognises the column layouts of the
sets the paper used (docs/method.md §2.3, §3) and names the columns it found and the ones it expected when none fits, so
pointing an evaluation at the wrong file fails at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset

from frpo_core.data.conversations import as_chat
from frpo_core.data.sources import NAMED, fixed_subset, load_source

TASKS = ("safety", "normal")
"""Prompt tasks: "safety" prompts get the safety reward, "normal" ones the helpfulness reward (docs/method.md §2.3)."""


def load_prompts(
    source: str | Path, *, task: str | None = None, limit: int | None = None, seed: int = 0, split: str = "train"
) -> Dataset:
    """RL / evaluation prompts: a conversational ``prompt`` column, ``task`` ("safety" | "normal") and ``category``.

    The layout is read from the columns (for the hub copies named ``"harmbench"`` and ``"strongreject"``, whose plain
    prompt/category columns cannot tell, from the name), so an evaluation can be pointed at any of these sets:

    - ``prompt`` with ``task`` or ``ability`` (the shipped sets, the authors' parquet and jsonl). ``prompt`` may be a
      plain string or a chat list; both become ``[{"role": "user", "content": ...}]`` (a chat list is kept, only its
      ``role``/``content`` keys). ``task`` comes from a ``task`` column or, as in the authors' data, from
      ``ability``: ``"refusal"`` marks a harmless prompt (task "normal"; the label names the behaviour to *avoid*,
      over-refusal) and any other ability (wildjailbreak, rainbow, aegis) a harmful one (task "safety").
      ``category`` is the ``category`` column or else the ``ability``, when either exists.
    - HarmBench's behaviours (``Behavior``, ...): as :func:`load_harmbench` with its standard behaviours, so a
      ``behavior_id`` column comes too.
    - StrongREJECT's forbidden prompts (``forbidden_prompt``, ...): as :func:`load_strongreject`.

    ``task`` filters to one task; ``limit`` keeps a :func:`fixed_subset` of that many rows under ``seed``.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task={task!r} must be one of {TASKS} or None")
    raw = load_source(source, split=split)
    layout = _prompt_layout(source, raw.column_names)
    if layout == "harmbench":
        dataset = _harmbench(raw, source, ("standard",))
    elif layout == "strongreject":
        dataset = _strongreject(raw, source)
    else:
        dataset = raw.map(_normalise_prompt_row, remove_columns=raw.column_names)
        if not {"category", "ability"} & set(raw.column_names):
            dataset = dataset.remove_columns("category")
    if task is not None:
        dataset = dataset.filter(lambda row: row["task"] == task)
    return dataset if limit is None else fixed_subset(dataset, limit, seed)


def _prompt_layout(source: str | Path, column_names: Sequence[str]) -> str:
    """Which prompt layout ``source`` has: "harmbench", "strongreject" or "prompts" (prompt + task/ability)."""
    named = None if isinstance(source, Path) else NAMED.get(str(source))
    if named is not None and named.layout is not None:
        return named.layout
    columns = set(column_names)
    if "Behavior" in columns:
        return "harmbench"
    if "forbidden_prompt" in columns:
        return "strongreject"
    if "prompt" in columns and columns & {"task", "ability"}:
        return "prompts"
    raise ValueError(
        f"source={str(source)!r} has columns {sorted(columns)}; expected a 'prompt' column with a 'task' or "
        f"'ability' column, HarmBench's {list(HARMBENCH_COLUMNS)} or StrongREJECT's {list(STRONGREJECT_COLUMNS)} "
        "(the hub copies of HarmBench and StrongREJECT load by the names 'harmbench' and 'strongreject')"
    )


def _normalise_prompt_row(row: Mapping[str, Any]) -> dict[str, Any]:
    task = row.get("task")
    if task is None and row.get("ability") is not None:
        task = "normal" if row["ability"] == "refusal" else "safety"
    if task not in TASKS:
        raise ValueError(f"task={task!r} in the data must be one of {TASKS}")
    category = row.get("category") or row.get("ability") or ""
    return {"prompt": as_chat(row["prompt"]), "task": task, "category": category}


HARMBENCH_FUNCTIONAL_CATEGORIES = ("standard", "contextual", "copyright")
"""HarmBench's functional categories. Its text CSV lists its 200 standard behaviours first (then 100 copyright and
100 contextual ones), so the paper's "100 of the first 200 rows" are 100 standard behaviours (docs/method.md §3)."""

HARMBENCH_COLUMNS = ("Behavior", "FunctionalCategory", "SemanticCategory", "BehaviorID")
"""Required columns of ``harmbench_behaviors_text_all.csv`` (``ContextString`` and ``Tags`` are optional)."""

STRONGREJECT_COLUMNS = ("forbidden_prompt", "category")
"""Required columns of StrongREJECT's CSVs (``strongreject_small_dataset.csv`` also has ``source``)."""

_HUB_PROMPT_COLUMNS = ("prompt", "category")  # the hub copies of HarmBench (+ "context") and StrongREJECT


def load_harmbench(
    source: str | Path = "harmbench",
    *,
    limit: int | None = None,
    seed: int = 0,
    functional_categories: Sequence[str] = ("standard",),
    split: str = "train",
) -> Dataset:
    """HarmBench behaviours as safety prompts: ``prompt`` (conversational), ``task`` = "safety", ``category`` (the
    semantic category) and ``behavior_id``.

    ``source`` is HarmBench's ``harmbench_behaviors_text_all.csv`` (or any file or hub id with its columns
    :data:`HARMBENCH_COLUMNS`), or the hub copy ``"harmbench"`` (prompt, category, and context in its "contextual"
    config; it has no behaviour ids, so ``behavior_id`` is a hash of the behaviour's text there). A contextual
    behaviour's prompt is its context, a ``---`` rule, then the request, as HarmBench builds its test cases. Only
    ``functional_categories`` are kept; in the hub copy a row with a context is "contextual", any other "standard".

    The paper judged 100 behaviours drawn from the first 200 rows of the CSV, i.e. from its standard behaviours:
    ``limit=100`` keeps a :func:`fixed_subset` of them drawn once from ``seed``, instead of a new draw at every
    evaluation as the authors' callback did (docs/method.md §2.4 item 12).
    """
    dataset = _harmbench(load_source(source, split=split), source, functional_categories)
    return dataset if limit is None else fixed_subset(dataset, limit, seed)


def _harmbench(raw: Dataset, source: str | Path, functional_categories: Sequence[str]) -> Dataset:
    wanted = set(functional_categories)
    if not wanted or not wanted <= set(HARMBENCH_FUNCTIONAL_CATEGORIES):
        raise ValueError(
            f"functional_categories={tuple(functional_categories)!r} must be a non-empty selection of "
            f"{HARMBENCH_FUNCTIONAL_CATEGORIES}"
        )
    columns = set(raw.column_names)
    if set(HARMBENCH_COLUMNS) <= columns:
        convert = _harmbench_csv_row
    elif set(_HUB_PROMPT_COLUMNS) <= columns:
        convert = _harmbench_hub_row
    else:
        raise ValueError(
            f"source={str(source)!r} has columns {sorted(columns)}; expected HarmBench's {list(HARMBENCH_COLUMNS)} "
            f"(+ 'ContextString') or its hub copy's {list(_HUB_PROMPT_COLUMNS)} (+ 'context')"
        )
    dataset = raw.map(convert, remove_columns=raw.column_names)
    dataset = dataset.filter(lambda row: row["functional_category"] in wanted)
    return dataset.select_columns(["prompt", "task", "category", "behavior_id"])


def _context(value: Any) -> str | None:
    """A behaviour's context string, or None: an empty CSV cell may load as None, NaN or ""."""
    return value if isinstance(value, str) and value.strip() else None


def _harmbench_prompt(behavior: str, context: str | None) -> list[dict[str, str]]:
    """HarmBench's test case: a contextual behaviour reads its context, a rule, then the request."""
    return [{"role": "user", "content": f"{context}\n\n---\n\n{behavior}" if context else behavior}]


def _harmbench_csv_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "prompt": _harmbench_prompt(row["Behavior"], _context(row.get("ContextString"))),
        "task": "safety",
        "category": row["SemanticCategory"],
        "behavior_id": row["BehaviorID"],
        "functional_category": row["FunctionalCategory"],
    }


def _harmbench_hub_row(row: Mapping[str, Any]) -> dict[str, Any]:
    context = _context(row.get("context"))
    return {
        "prompt": _harmbench_prompt(row["prompt"], context),
        "task": "safety",
        "category": row["category"],
        "behavior_id": hashlib.sha256(row["prompt"].encode("utf-8")).hexdigest()[:12],
        "functional_category": "contextual" if context else "standard",
    }


def load_strongreject(
    source: str | Path = "strongreject", *, limit: int | None = None, seed: int = 0, split: str = "train"
) -> Dataset:
    """StrongREJECT's forbidden prompts as safety prompts: ``prompt`` (conversational), ``task`` = "safety" and
    ``category``.

    The paper judged all 60 prompts of ``strongreject_small_dataset.csv`` (columns category, source,
    forbidden_prompt; docs/method.md §3): pass that file's path. The hub copy named ``"strongreject"`` is the full set
    of 313 prompts (columns prompt, category, source). ``limit`` keeps a :func:`fixed_subset` under ``seed``.
    """
    dataset = _strongreject(load_source(source, split=split), source)
    return dataset if limit is None else fixed_subset(dataset, limit, seed)


def _strongreject(raw: Dataset, source: str | Path) -> Dataset:
    columns = set(raw.column_names)
    if set(STRONGREJECT_COLUMNS) <= columns:
        text = "forbidden_prompt"
    elif set(_HUB_PROMPT_COLUMNS) <= columns:
        text = "prompt"
    else:
        raise ValueError(
            f"source={str(source)!r} has columns {sorted(columns)}; expected StrongREJECT's "
            f"{list(STRONGREJECT_COLUMNS)} or its hub copy's {list(_HUB_PROMPT_COLUMNS)}"
        )
    dataset = raw.map(
        lambda row: {"prompt": as_chat(row[text]), "task": "safety", "category": row["category"]},
        remove_columns=raw.column_names,
    )
    return dataset.select_columns(["prompt", "task", "category"])
