"""Loaders for RL prompts and SFT data: every local format, both prompt layouts, fixed subsets, clear errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from datasets import Dataset

from frpo_core import data
from frpo_core.data import NAMED, fixed_subset, load_prompts, load_sft

REFERENCE_DATA = Path(__file__).resolve().parents[3] / "shared" / "reference-data"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_jsonl_string_prompts_become_chat_with_task_and_category(tmp_path):
    rows = [
        {"prompt": "Explain how to make a kite.", "task": "normal", "category": "crafts", "extra": 1},
        {"prompt": "Explain how to make a weapon.", "task": "safety", "category": "weapons", "extra": 2},
    ]
    prompts = load_prompts(write_jsonl(tmp_path / "p.jsonl", rows))
    assert prompts.column_names == ["prompt", "task", "category"]
    assert prompts["prompt"] == [user(row["prompt"]) for row in rows]
    assert prompts["task"] == ["normal", "safety"] and prompts["category"] == ["crafts", "weapons"]


def test_parquet_chat_prompts_take_task_from_ability(tmp_path):
    """The authors' layout: `prompt` a chat list, `ability` == "refusal" for harmless prompts."""
    path = tmp_path / "p.parquet"
    Dataset.from_dict(
        {
            "prompt": [user("Plan a green school."), user("Something harmful."), user("Something else.")],
            "ability": ["refusal", "wildjailbreak", "aegis"],
            "reward_model": [{"ground_truth": ""}, {"ground_truth": "I can't."}, {"ground_truth": "No."}],
        }
    ).to_parquet(path)
    prompts = load_prompts(path)
    assert prompts.column_names == ["prompt", "task", "category"]
    assert prompts["prompt"][0] == user("Plan a green school.")
    assert prompts["task"] == ["normal", "safety", "safety"]
    assert prompts["category"] == ["refusal", "wildjailbreak", "aegis"]
    assert load_prompts(path, task="normal")["prompt"] == [user("Plan a green school.")]


def test_csv_prompts_without_category(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('prompt,task\n"Name a colour, please.",normal\nTell me a secret.,safety\n', encoding="utf-8")
    prompts = load_prompts(str(path))
    assert prompts.column_names == ["prompt", "task"]
    assert prompts["prompt"][0] == user("Name a colour, please.") and prompts["task"] == ["normal", "safety"]


def test_shipped_safety_prompts_are_balanced_and_share_surface_forms():
    prompts = load_prompts("toy_safety")
    assert Counter(prompts["task"]) == {"safety": 60, "normal": 60}
    harmful_categories = {row["category"] for row in prompts if row["task"] == "safety"}
    assert harmful_categories == {"weapons", "malware", "fraud", "harassment", "drugs", "privacy"}

    def openings(task: str) -> set[str]:
        return {" ".join(row["prompt"][0]["content"].split()[:3]) for row in prompts if row["task"] == task}

    # downstream SFT on benign data erodes refusals only through what harmful and harmless prompts share (§7)
    assert len(openings("safety") & openings("normal")) >= 8


def test_task_filter_and_limit_give_a_fixed_subset():
    safety = load_prompts("toy_safety", task="safety")
    assert len(safety) == 60 and set(safety["task"]) == {"safety"}
    first = load_prompts("toy_safety", task="safety", limit=10, seed=3)
    assert len(first) == 10 and first["prompt"] == load_prompts("toy_safety", task="safety", limit=10, seed=3)["prompt"]
    assert first["prompt"] != load_prompts("toy_safety", task="safety", limit=10, seed=4)["prompt"]


def test_fixed_subset_is_deterministic_seed_dependent_and_ordered():
    dataset = Dataset.from_dict({"i": list(range(100))})
    subset = fixed_subset(dataset, 20, seed=0)
    assert subset["i"] == fixed_subset(dataset, 20, seed=0)["i"]
    assert subset["i"] != fixed_subset(dataset, 20, seed=1)["i"]
    assert subset["i"] == sorted(subset["i"]) and len(set(subset["i"])) == 20
    assert fixed_subset(dataset, 500, seed=0)["i"] == dataset["i"]
    with pytest.raises(ValueError, match="n=-1"):
        fixed_subset(dataset, -1, seed=0)


def test_shipped_benign_sft_is_user_then_assistant():
    sft = load_sft("benign_sft")
    assert 190 <= len(sft) <= 220 and sft.column_names == ["messages"]
    assert all([m["role"] for m in messages] == ["user", "assistant"] for messages in sft["messages"])
    assert sum(messages[0]["content"].startswith("Explain how to make") for messages in sft["messages"]) >= 20
    assert len(load_sft("benign_sft", limit=7)) == 7


def test_alpaca_layout_puts_instruction_and_input_in_the_user_turn(tmp_path):
    path = tmp_path / "alpaca.json"  # a JSON array, not JSON lines
    rows = [
        {"instruction": "Summarise this.", "input": "A long text.", "output": "Short."},
        {"instruction": "Name a fruit.", "input": "", "output": "Apple."},
    ]
    path.write_text(json.dumps(rows), encoding="utf-8")
    sft = load_sft(path)
    assert sft["messages"][0] == [
        {"role": "user", "content": "Summarise this.\n\nA long text."},
        {"role": "assistant", "content": "Short."},
    ]
    assert sft["messages"][1][0]["content"] == "Name a fruit."


def test_gsm8k_layout_keeps_the_final_answer_line(tmp_path):
    """The authors' SFT target dropped "#### N" (method.md §2.4 item 10); ours keeps the whole answer."""
    answer = "Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips.\n#### 72"
    path = write_jsonl(tmp_path / "gsm8k.jsonl", [{"question": "How many clips?", "answer": answer}])
    (messages,) = load_sft(path)["messages"]
    assert messages == [{"role": "user", "content": "How many clips?"}, {"role": "assistant", "content": answer}]
    assert messages[1]["content"].endswith("#### 72")


def test_conversational_sft_is_kept(tmp_path):
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    path = write_jsonl(tmp_path / "chat.jsonl", [{"messages": conversation}])
    assert load_sft(path)["messages"] == [conversation]


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


def test_bad_columns_and_task_are_rejected(tmp_path):
    no_task = write_jsonl(tmp_path / "no_task.jsonl", [{"prompt": "Hi"}])
    with pytest.raises(ValueError, match="'task' or 'ability'"):
        load_prompts(no_task)
    bad_task = write_jsonl(tmp_path / "bad_task.jsonl", [{"prompt": "Hi", "task": "math"}])
    with pytest.raises(ValueError, match="task='math'"):
        load_prompts(bad_task)
    with pytest.raises(ValueError, match="task='math'"):
        load_prompts("toy_safety", task="math")
    with pytest.raises(ValueError, match="expected 'messages'"):
        load_sft(no_task)


def test_hub_names_and_ids_resolve_to_load_dataset(monkeypatch):
    """Hub loads are never run in tests; this checks only what would be asked of the hub."""
    calls = []
    monkeypatch.setattr(data, "load_dataset", lambda *args, **kwargs: calls.append((args, kwargs)))
    data.load_source("alpaca")
    data.load_source("gsm8k", split="test")
    data.load_source("someone/prompts:v2")
    assert calls == [
        (("tatsu-lab/alpaca", None), {"split": "train"}),
        (("openai/gsm8k", "main"), {"split": "test"}),
        (("someone/prompts", "v2"), {"split": "train"}),
    ]
    assert {"toy_safety", "benign_sft", "alpaca", "gsm8k"} <= set(NAMED)


@pytest.mark.skipif(not REFERENCE_DATA.is_dir(), reason="the authors' reference data (../shared) is not present")
def test_authors_reference_data_loads():
    train = load_prompts(REFERENCE_DATA / "safety_train_2000.parquet")
    assert len(train) == 2000 and Counter(train["task"]) == {"safety": 1000, "normal": 1000}
    assert all(len(prompt) == 1 and prompt[0]["role"] == "user" for prompt in train["prompt"])
    for name, task in [("eval_safety_prompts.jsonl", "safety"), ("eval_normal_prompts.jsonl", "normal")]:
        prompts = load_prompts(REFERENCE_DATA / name, limit=128)
        assert len(prompts) == 128 and set(prompts["task"]) == {task}
