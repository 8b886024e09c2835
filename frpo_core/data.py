"""Datasets for FRPO's workflow: RL prompts labelled by task, downstream SFT conversations, fixed eval subsets.

Every loader takes one ``source`` and returns a ``datasets.Dataset`` in TRL's conversational format:

- a name from :data:`NAMED`: a small set shipped with the package (``"toy_safety"``, ``"benign_sft"``,
  ``"toy_math"``, ``"toy_code"``; fully offline) or a hub dataset the paper used (``"alpaca"``, ``"gsm8k"``,
  ``"harmbench"``, ``"strongreject"``, ``"opencodeinstruct"``, ``"competition_math"``, ``"math500"``; MATH-style
  sets load with :func:`frpo_core.mathrl.load_math`);
- a local file (``.jsonl``, ``.json``, ``.csv``, ``.parquet``), loaded with ``datasets``' packaged builders;
- a hub id ``owner/name`` (optionally ``owner/name:config``), loaded with ``load_dataset``.

Each loader recognises the column layouts of the sets the paper used (method.md §2.3, §3) and names the columns it
found and the ones it expected when none fits, so pointing an evaluation at the wrong file fails at once.

The shipped sets are synthetic and mild. ``safety_prompts.jsonl`` mixes generic harmful requests (task "safety")
with harmless requests of the same surface form (task "normal"), and ``benign_sft.jsonl`` is benign SFT data with
those surface forms too, so that downstream SFT on it can erode refusals through shared features (method.md §7).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from datasets import Dataset, IterableDataset, load_dataset

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
    # the prompt layout ("harmbench" | "strongreject") of a hub copy whose plain prompt/category columns cannot say it
    layout: str | None = None
    # read row by row instead of downloading the whole set (a set far larger than any run uses)
    streaming: bool = False


NAMED: dict[str, NamedSource] = {
    "toy_safety": NamedSource(
        "safety_prompts.jsonl", description="120 synthetic prompts: 60 generic harmful (safety), 60 harmless (normal)"
    ),
    "toy_safety_heldout": NamedSource(
        "safety_prompts_heldout.jsonl",
        description="60 more toy prompts (36 harmful, 24 harmless) that no training set contains: the toy evaluation",
    ),
    "toy_warm_start": NamedSource(
        "toy_warm_start.jsonl",
        description="SFT data that makes the tiny model refuse harmful toy prompts ~60 % of the time (frpo_core.toy)",
    ),
    "benign_sft": NamedSource("benign_sft.jsonl", description="~200 benign instruction/response pairs"),
    "alpaca": NamedSource("tatsu-lab/alpaca", on_hub=True, description="the paper's Alpaca downstream SFT (§3)"),
    "gsm8k": NamedSource("openai/gsm8k", on_hub=True, config="main", description="the paper's GSM8K downstream SFT"),
    "harmbench": NamedSource(
        "walledai/HarmBench",
        on_hub=True,
        config="standard",
        layout="harmbench",
        description="HarmBench's 200 standard behaviours (a gated hub copy; the paper's CSV loads by its path)",
    ),
    "strongreject": NamedSource(
        "walledai/StrongREJECT",
        on_hub=True,
        layout="strongreject",
        description="StrongREJECT's 313 forbidden prompts; the paper used its 60-prompt small CSV (load it by path)",
    ),
    "opencodeinstruct": NamedSource(
        "nvidia/OpenCodeInstruct",
        on_hub=True,
        streaming=True,
        description="the paper's code SFT data (~5M rows, streamed; only solutions that passed all their tests)",
    ),
    "toy_code": NamedSource(
        "toy_code.jsonl",
        description="30 trivial Python tasks in OpenCodeInstruct's layout (5 failed their tests: filtered out)",
    ),
    "toy_math": NamedSource(
        "toy_math.jsonl",
        description="the 100 one-digit sums as boxed-answer problems (frpo_core.mathrl.toy_math_rows)",
    ),
    "toy_math_warm_start": NamedSource(
        "toy_math_warm_start.jsonl",
        description="SFT data that makes the tiny model box ~1/4 of its toy_math answers (frpo_core.rl, a warm start)",
    ),
    "competition_math": NamedSource(
        "qwedsacf/competition_math",
        on_hub=True,
        description="the paper's math RL data: all of MATH, train and test (load with frpo_core.mathrl.load_math)",
    ),
    "math500": NamedSource(
        "HuggingFaceH4/MATH-500",
        on_hub=True,
        description="MATH500 (split 'test'): the math benchmark, and what math RL data is decontaminated against",
    ),
}
"""Datasets by name. The shipped ones are what tests and the laptop path use; the hub ones are the paper's."""


def load_source(source: str | Path, *, split: str = "train", streaming: bool = False) -> Dataset | IterableDataset:
    """Load ``source`` as it is stored (no column normalisation): a :data:`NAMED` set, a local file or a hub id.

    A string that is not a name, an existing file or an ``owner/name`` hub id raises ``ValueError`` naming the
    choices, so a typo fails before anything (a download, a training job) starts. ``streaming`` (forced for named
    sets marked so) returns an ``IterableDataset`` read row by row, so a run that uses the first 50k rows of a
    5M-row set does not download all of it.
    """
    text = str(source)
    if not isinstance(source, Path) and text in NAMED:
        named = NAMED[text]
        streaming = streaming or named.streaming
        if named.on_hub:
            return load_dataset(named.location, named.config, split=split, streaming=streaming)
        return _load_local(Path(str(files("frpo_core").joinpath("assets", named.location))), streaming=streaming)
    path = Path(text)
    if path.suffix.lower() in LOCAL_BUILDERS or path.exists() or isinstance(source, Path):
        return _load_local(path, streaming=streaming)
    if _HUB_ID.match(text):
        hub_id, _, config = text.partition(":")
        return load_dataset(hub_id, config or None, split=split, streaming=streaming)
    raise ValueError(
        f"source={text!r} is neither a named dataset ({', '.join(sorted(NAMED))}), a local file "
        f"({', '.join(LOCAL_BUILDERS)}) nor a hub id 'owner/name[:config]'"
    )


def _load_local(path: Path, *, streaming: bool = False) -> Dataset | IterableDataset:
    """A local file through ``datasets``' packaged builder for its suffix (one split, all rows)."""
    builder = LOCAL_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise ValueError(f"source={str(path)!r}: unsupported file type; use one of {', '.join(LOCAL_BUILDERS)}")
    if not path.is_file():
        raise ValueError(f"source={str(path)!r}: no such file")
    return load_dataset(builder, data_files=str(path), split="train", streaming=streaming)


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
    return {"prompt": _as_chat(row["prompt"]), "task": task, "category": category}


def _as_chat(prompt: str | list[Mapping[str, Any]]) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": message["role"], "content": message["content"]} for message in prompt]


HARMBENCH_FUNCTIONAL_CATEGORIES = ("standard", "contextual", "copyright")
"""HarmBench's functional categories. Its text CSV lists its 200 standard behaviours first (then 100 copyright and
100 contextual ones), so the paper's "100 of the first 200 rows" are 100 standard behaviours (method.md §3)."""

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
    evaluation as the authors' callback did (method.md §2.4 item 12).
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
    forbidden_prompt; method.md §3): pass that file's path. The hub copy named ``"strongreject"`` is the full set of
    313 prompts (columns prompt, category, source). ``limit`` keeps a :func:`fixed_subset` under ``seed``.
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
        lambda row: {"prompt": _as_chat(row[text]), "task": "safety", "category": row["category"]},
        remove_columns=raw.column_names,
    )
    return dataset.select_columns(["prompt", "task", "category"])


def load_sft(source: str | Path, *, limit: int | None = None, split: str = "train", streaming: bool = False) -> Dataset:
    """Downstream SFT data: one conversational ``messages`` column (a user turn, then the assistant's answer).

    The conversation may open with a system turn: a ``messages`` column's own, or the empty one of the code SFT.

    Recognised layouts, first match wins:

    - ``messages`` already conversational (kept, ``role``/``content`` only);
    - OpenCodeInstruct ``input`` / ``output`` / ``average_test_score``: only rows whose solution passed all its unit
      tests (``average_test_score``, a string, equal to 1) are kept, as in the authors' code SFT, and the user turn
      follows an empty system turn as in their script (method.md §3);
    - Alpaca ``instruction`` / ``input`` / ``output``: the user turn is the instruction, then the input after a
      blank line when there is one;
    - ``instruction`` / ``response`` (the shipped ``benign_sft``);
    - GSM8K ``question`` / ``answer``: the *full* answer is the target, rationale and the final ``#### N`` line. The
      authors' script cut the ``#### N`` line, so their SFT target never stated the answer (method.md §2.4 item 10).

    ``limit`` keeps the first ``limit`` rows (after the test-score filter), as the authors took "the first 40k" of
    Alpaca (method.md §3). ``streaming`` reads the source row by row and needs a ``limit``; ``"opencodeinstruct"``
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
    return _as_chat(row["messages"])


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
