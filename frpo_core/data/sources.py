"""Where a data set comes from: the sets known by name (shipped or on the hub), local files and hub ids.

:func:`load_source` reads a set as it is stored, with no column normalisation; the loaders built on it
(:func:`frpo_core.data.conversations.load_sft`, :func:`frpo_core.safety.prompts.load_prompts`,
:func:`frpo_core.math.data.load_math`) recognise the column layouts of the sets the paper used and turn them into TRL's
conversational format. :func:`fixed_subset` draws an evaluation subset once, so every evaluation of a run sees the
same rows.

The shipped sets are synthetic and mild: the toy safety prompts mix generic harmful requests (task "safety") with
harmless requests of the same surface form (task "normal"), and ``benign_sft`` is benign SFT data with those surface
forms too, so that downstream SFT on it can erode refusals through shared features (docs/method.md §7).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from datasets import Dataset, IterableDataset, load_dataset

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
        description="SFT data: the tiny model then refuses harmful toy prompts ~60 % of the time (frpo_core.toy)",
    ),
    "benign_sft": NamedSource("benign_sft.jsonl", description="~200 benign instruction/response pairs"),
    "alpaca": NamedSource(
        "tatsu-lab/alpaca", on_hub=True, description="the paper's Alpaca downstream SFT (docs/method.md §3)"
    ),
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
        description="the 100 one-digit sums as boxed-answer problems (frpo_core.toy.arithmetic.toy_math_rows)",
    ),
    "toy_math_warm_start": NamedSource(
        "toy_math_warm_start.jsonl",
        description="SFT data: toy_math's sums boxed, the carry dropped in half the answers with one (frpo_core.toy)",
    ),
    "competition_math": NamedSource(
        "qwedsacf/competition_math",
        on_hub=True,
        description="the paper's math RL data: all of MATH, train and test (load with frpo_core.math.data.load_math)",
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
    the curve (docs/method.md §2.4 item 12, §6.10). The choice depends only on ``(len(dataset), n, seed)``. With
    ``n >= len(dataset)`` the whole dataset is returned.
    """
    if n < 0:
        raise ValueError(f"n={n} must be >= 0")
    if n >= len(dataset):
        return dataset
    indices = sorted(random.Random(seed).sample(range(len(dataset)), n))
    return dataset.select(indices)
