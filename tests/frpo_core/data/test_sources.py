"""Data sources: named sets, local files and hub ids resolve, or fail naming the choices; fixed subsets."""

from __future__ import annotations

import pytest
from datasets import Dataset

from frpo_core.data import sources
from frpo_core.data.conversations import load_sft
from frpo_core.data.sources import NAMED, fixed_subset
from frpo_core.safety.prompts import load_prompts


def test_fixed_subset_is_deterministic_seed_dependent_and_ordered():
    dataset = Dataset.from_dict({"i": list(range(100))})
    subset = fixed_subset(dataset, 20, seed=0)
    assert subset["i"] == fixed_subset(dataset, 20, seed=0)["i"]
    assert subset["i"] != fixed_subset(dataset, 20, seed=1)["i"]
    assert subset["i"] == sorted(subset["i"]) and len(set(subset["i"])) == 20
    assert fixed_subset(dataset, 500, seed=0)["i"] == dataset["i"]
    with pytest.raises(ValueError, match="n=-1"):
        fixed_subset(dataset, -1, seed=0)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("no_such_set", "source='no_such_set'.*toy_safety"),
        ("missing/file.jsonl", "no such file"),
        ("notes.txt", "unsupported file type"),
    ],
)
def test_bad_sources_name_the_argument_and_the_choices(source, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_prompts(source)
    with pytest.raises(ValueError, match=message):
        load_sft(source)


def test_hub_names_and_ids_resolve_to_load_dataset(monkeypatch):
    """Hub loads are never run in tests; this checks only what would be asked of the hub."""
    calls = []
    monkeypatch.setattr(sources, "load_dataset", lambda *args, **kwargs: calls.append((args, kwargs)))
    sources.load_source("alpaca")
    sources.load_source("gsm8k", split="test")
    sources.load_source("someone/prompts:v2")
    sources.load_source("someone/prompts", streaming=True)
    sources.load_source("harmbench")
    sources.load_source("strongreject")
    sources.load_source("opencodeinstruct")  # 5M rows: always streamed
    assert calls == [
        (("tatsu-lab/alpaca", None), {"split": "train", "streaming": False}),
        (("openai/gsm8k", "main"), {"split": "test", "streaming": False}),
        (("someone/prompts", "v2"), {"split": "train", "streaming": False}),
        (("someone/prompts", None), {"split": "train", "streaming": True}),
        (("walledai/HarmBench", "standard"), {"split": "train", "streaming": False}),
        (("walledai/StrongREJECT", None), {"split": "train", "streaming": False}),
        (("nvidia/OpenCodeInstruct", None), {"split": "train", "streaming": True}),
    ]
    assert {"toy_safety", "benign_sft", "alpaca", "gsm8k", "harmbench", "strongreject", "opencodeinstruct"} <= set(
        NAMED
    )
