"""Safety prompts: every local format and layout (the authors' mix, HarmBench, StrongREJECT), fixed subsets, clear
errors."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest
from datasets import Dataset

from frpo_core.data import sources
from frpo_core.data.conversations import load_sft
from frpo_core.safety.prompts import load_harmbench, load_prompts, load_strongreject
from tests.frpo_core.rows import FORMATS, user, write_jsonl, write_table

REFERENCE_DATA = Path(__file__).resolve().parents[4] / "shared" / "reference-data"


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

    # downstream SFT on benign data erodes refusals only through what harmful and harmless prompts share
    # (docs/method.md §7)
    assert len(openings("safety") & openings("normal")) >= 8


def test_task_filter_and_limit_give_a_fixed_subset():
    safety = load_prompts("toy_safety", task="safety")
    assert len(safety) == 60 and set(safety["task"]) == {"safety"}
    first = load_prompts("toy_safety", task="safety", limit=10, seed=3)
    assert len(first) == 10 and first["prompt"] == load_prompts("toy_safety", task="safety", limit=10, seed=3)["prompt"]
    assert first["prompt"] != load_prompts("toy_safety", task="safety", limit=10, seed=4)["prompt"]


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


def test_hub_copies_of_harmbench_and_strongreject_load_as_prompts_by_name(monkeypatch):
    """Their plain prompt/category columns cannot say which benchmark they are; the name does.

    ``load_dataset`` hands back a table with the hub copy's columns, so no hub is reached.
    """
    hub_tables = {
        "walledai/HarmBench": Dataset.from_dict({"prompt": ["Behaviour A.", "Behaviour B."], "category": ["x", "y"]}),
        "walledai/StrongREJECT": Dataset.from_dict(
            {"prompt": ["Forbidden A."], "category": ["Disinformation and deception"], "source": ["custom"]}
        ),
    }
    monkeypatch.setattr(sources, "load_dataset", lambda hub_id, config, split, streaming: hub_tables[hub_id])
    harmbench = load_prompts("harmbench")
    assert harmbench.column_names == ["prompt", "task", "category", "behavior_id"]
    assert harmbench["prompt"] == [user("Behaviour A."), user("Behaviour B.")] and set(harmbench["task"]) == {"safety"}
    strongreject = load_prompts("strongreject", task="safety")
    assert strongreject["prompt"] == [user("Forbidden A.")] and strongreject["category"] == [
        "Disinformation and deception"
    ]
    with pytest.raises(ValueError, match=r"has columns \['category', 'prompt'\].*names 'harmbench' and 'strongreject'"):
        load_prompts("walledai/HarmBench:standard")


@pytest.mark.skipif(not REFERENCE_DATA.is_dir(), reason="the authors' reference data (../shared) is not present")
def test_authors_reference_data_loads(tmp_path):
    """The authors' files load in every local format. Prompt texts are compared, never printed (red-teaming data)."""
    train = load_prompts(REFERENCE_DATA / "safety_train_2000.parquet")
    assert len(train) == 2000 and Counter(train["task"]) == {"safety": 1000, "normal": 1000}
    assert Counter(train["category"]) == {"refusal": 1000, "wildjailbreak": 413, "rainbow": 391, "aegis": 196}
    assert all(len(prompt) == 1 and prompt[0]["role"] == "user" for prompt in train["prompt"])
    for name, task in [("eval_safety_prompts.jsonl", "safety"), ("eval_normal_prompts.jsonl", "normal")]:
        full = load_prompts(REFERENCE_DATA / name)
        assert len(full) == 1000 and set(full["task"]) == {task}
        prompts = load_prompts(REFERENCE_DATA / name, limit=128)
        assert len(prompts) == 128 and set(prompts["task"]) == {task}
        same_subset = prompts["prompt"] == load_prompts(REFERENCE_DATA / name, limit=128)["prompt"]
        assert same_subset, "the fixed subset changed between calls"  # compared apart: a diff would print prompts
        # the same rows as CSV (string prompts, ability, task; the nested columns dropped)
        csv = tmp_path / f"{name}.csv"
        Dataset.from_json(str(REFERENCE_DATA / name)).select_columns(["prompt", "ability", "task"]).to_csv(csv)
        from_csv = load_prompts(csv)
        same_rows = from_csv["prompt"] == full["prompt"] and from_csv["category"] == full["category"]
        assert same_rows, f"{name} read back from CSV differs from the jsonl"


def harmbench_rows(n_standard: int = 4) -> list[dict]:
    """HarmBench's CSV layout: standard rows first (no context), then copyright and contextual ones."""
    rows = [
        {
            "Behavior": f"Standard behaviour {i}.",
            "FunctionalCategory": "standard",
            "SemanticCategory": ["illegal", "cybercrime_intrusion"][i % 2],
            "Tags": "",
            "ContextString": "",
            "BehaviorID": f"standard_{i}",
        }
        for i in range(n_standard)
    ]
    rows.append(
        {
            "Behavior": "Copyright behaviour.",
            "FunctionalCategory": "copyright",
            "SemanticCategory": "copyright",
            "Tags": "book, hash_check",
            "ContextString": "",
            "BehaviorID": "copyright_0",
        }
    )
    rows.append(
        {
            "Behavior": "Contextual behaviour about the text above.",
            "FunctionalCategory": "contextual",
            "SemanticCategory": "misinformation_disinformation",
            "Tags": "context",
            "ContextString": "A paragraph of context.\nIt has two lines.",
            "BehaviorID": "contextual_0",
        }
    )
    return rows


@pytest.mark.parametrize("fmt", FORMATS)
def test_harmbench_csv_layout_in_every_format(tmp_path, fmt):
    path = write_table(tmp_path / f"harmbench.{fmt}", harmbench_rows())
    standard = load_harmbench(path)
    assert standard.column_names == ["prompt", "task", "category", "behavior_id"]
    assert standard["prompt"] == [user(f"Standard behaviour {i}.") for i in range(4)]
    assert set(standard["task"]) == {"safety"}
    assert standard["category"] == ["illegal", "cybercrime_intrusion"] * 2
    assert standard["behavior_id"] == [f"standard_{i}" for i in range(4)]

    contextual = load_harmbench(path, functional_categories=("contextual",))
    # HarmBench's test case for a contextual behaviour: the context, a rule, then the request
    expected = "A paragraph of context.\nIt has two lines.\n\n---\n\nContextual behaviour about the text above."
    assert contextual["prompt"] == [user(expected)] and contextual["behavior_id"] == ["contextual_0"]
    everything = load_harmbench(path, functional_categories=("standard", "contextual", "copyright"))
    assert everything["behavior_id"] == [*standard["behavior_id"], "copyright_0", "contextual_0"]

    # load_prompts recognises the layout by its columns and keeps the standard behaviours
    assert load_prompts(path)["behavior_id"] == standard["behavior_id"]
    assert load_prompts(path, task="normal")["prompt"] == []


def test_harmbench_fixed_subset_of_the_standard_behaviours_is_stable(tmp_path):
    """The paper's 100 of the first 200 rows: drawn once per seed, the same at every call
    (docs/method.md §2.4 item 12)."""
    path = write_table(tmp_path / "harmbench_behaviors_text_all.csv", harmbench_rows(n_standard=200))
    subset = load_harmbench(path, limit=100, seed=0)
    assert len(subset) == 100 and len(set(subset["behavior_id"])) == 100
    assert all(behavior_id.startswith("standard_") for behavior_id in subset["behavior_id"])
    assert load_harmbench(path, limit=100, seed=0)["behavior_id"] == subset["behavior_id"]
    assert load_harmbench(path, limit=100, seed=1)["behavior_id"] != subset["behavior_id"]
    assert load_prompts(path, limit=100, seed=0)["behavior_id"] == subset["behavior_id"]


def test_harmbench_hub_layout_and_bad_arguments(tmp_path):
    rows = [
        {"prompt": "Standard behaviour.", "category": "illegal", "context": None},
        {"prompt": "Contextual behaviour.", "category": "illegal", "context": "Some context."},
    ]
    path = write_table(tmp_path / "hub.parquet", rows)
    standard = load_harmbench(path)
    assert standard["prompt"] == [user("Standard behaviour.")] and standard["category"] == ["illegal"]
    assert standard["behavior_id"] == [hashlib.sha256(b"Standard behaviour.").hexdigest()[:12]]
    contextual = load_harmbench(path, functional_categories=["contextual"])
    assert contextual["prompt"] == [user("Some context.\n\n---\n\nContextual behaviour.")]

    with pytest.raises(ValueError, match="functional_categories=\\('chemical',\\)"):
        load_harmbench(path, functional_categories=("chemical",))
    with pytest.raises(ValueError, match="functional_categories=\\(\\)"):
        load_harmbench(path, functional_categories=())
    wrong = write_jsonl(tmp_path / "wrong.jsonl", [{"Behavior": "x", "BehaviorID": "b"}])
    with pytest.raises(
        ValueError, match=r"has columns \['Behavior', 'BehaviorID'\]; expected HarmBench's \['Behavior'"
    ):
        load_harmbench(wrong)
    with pytest.raises(ValueError, match=r"has columns \['Behavior', 'BehaviorID'\]; expected HarmBench's"):
        load_prompts(wrong)  # dispatched on 'Behavior', then told what is missing


@pytest.mark.parametrize("fmt", FORMATS)
def test_strongreject_small_csv_layout_in_every_format(tmp_path, fmt):
    rows = [
        {"category": "Disinformation and deception", "source": "custom", "forbidden_prompt": "Forbidden prompt one."},
        {"category": "Violence", "source": "DAN", "forbidden_prompt": "Forbidden prompt two, with a comma."},
        {"category": "Violence", "source": "custom", "forbidden_prompt": "Forbidden prompt three."},
    ]
    path = write_table(tmp_path / f"strongreject_small_dataset.{fmt}", rows)
    prompts = load_strongreject(path)
    assert prompts.column_names == ["prompt", "task", "category"]
    assert prompts["prompt"] == [user(row["forbidden_prompt"]) for row in rows]
    assert set(prompts["task"]) == {"safety"} and prompts["category"] == [row["category"] for row in rows]
    assert load_prompts(path)["prompt"] == prompts["prompt"]
    assert load_strongreject(path, limit=2, seed=5)["prompt"] == load_prompts(path, limit=2, seed=5)["prompt"]


def test_strongreject_hub_layout_and_bad_columns(tmp_path):
    hub = write_table(tmp_path / "hub.parquet", [{"prompt": "Forbidden.", "category": "Violence", "source": "x"}])
    assert load_strongreject(hub)["prompt"] == [user("Forbidden.")]
    wrong = write_jsonl(tmp_path / "wrong.jsonl", [{"forbidden_prompt": "x"}])
    with pytest.raises(ValueError, match=r"has columns \['forbidden_prompt'\]; expected StrongREJECT's"):
        load_strongreject(wrong)
    with pytest.raises(ValueError, match=r"has columns \['forbidden_prompt'\]; expected StrongREJECT's"):
        load_prompts(wrong)


def test_load_prompts_names_the_columns_it_found_and_the_layouts_it_knows(tmp_path):
    path = write_table(tmp_path / "other.csv", [{"text": "Hi", "label": 1}])
    with pytest.raises(ValueError) as raised:
        load_prompts(path)
    message = str(raised.value)
    assert "has columns ['label', 'text']" in message
    assert all(name in message for name in ("'prompt'", "'task' or 'ability'", "'Behavior'", "'forbidden_prompt'"))
