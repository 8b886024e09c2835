"""SFT conversations: every layout the paper used (Alpaca, GSM8K, OpenCodeInstruct, chat), in every local format,
streamed or not."""

from __future__ import annotations

import json

import pytest

from frpo_core.data.conversations import load_sft
from tests.frpo_core.rows import FORMATS, write_jsonl, write_table


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
    """The authors' SFT target dropped "#### N" (docs/method.md §2.4 item 10); ours keeps the whole answer."""
    answer = "Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips.\n#### 72"
    path = write_jsonl(tmp_path / "gsm8k.jsonl", [{"question": "How many clips?", "answer": answer}])
    (messages,) = load_sft(path)["messages"]
    assert messages == [{"role": "user", "content": "How many clips?"}, {"role": "assistant", "content": answer}]
    assert messages[1]["content"].endswith("#### 72")


def test_conversational_sft_is_kept(tmp_path):
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    path = write_jsonl(tmp_path / "chat.jsonl", [{"messages": conversation}])
    assert load_sft(path)["messages"] == [conversation]


def code_rows() -> list[dict]:
    """OpenCodeInstruct's layout: the share of unit tests passed is a string."""
    scores = ["1", "0.5", "1.0", "", "0", "1"]
    return [
        {
            "id": f"row{i}",
            "input": f"Write a function number {i}.",
            "output": f"def f{i}():\n    return {i}\n",
            "domain": "generic",
            "average_test_score": score,
        }
        for i, score in enumerate(scores)
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_opencodeinstruct_keeps_solutions_that_passed_every_test(tmp_path, fmt):
    path = write_table(tmp_path / f"code.{fmt}", code_rows())
    sft = load_sft(path)
    assert sft.column_names == ["messages"] and len(sft) == 3  # scores "1", "1.0" and "1"
    assert sft["messages"][0] == [
        {"role": "system", "content": ""},  # the authors' code SFT used an empty system prompt (docs/method.md §3)
        {"role": "user", "content": "Write a function number 0."},
        {"role": "assistant", "content": "def f0():\n    return 0\n"},
    ]
    assert [messages[1]["content"] for messages in sft["messages"]] == [
        "Write a function number 0.",
        "Write a function number 2.",
        "Write a function number 5.",
    ]
    # limit counts the rows kept, and a stream gives the same rows as a full load
    assert load_sft(path, limit=2)["messages"] == sft["messages"][:2]
    assert load_sft(path, limit=2, streaming=True)["messages"] == sft["messages"][:2]


def test_streaming_needs_a_limit_and_works_for_every_sft_layout(tmp_path):
    path = write_table(tmp_path / "code.jsonl", code_rows())
    with pytest.raises(ValueError, match="read as a stream; pass limit"):
        load_sft(path, streaming=True)
    assert load_sft("benign_sft", limit=5, streaming=True)["messages"] == load_sft("benign_sft", limit=5)["messages"]
    empty = load_sft(write_table(tmp_path / "failed.jsonl", code_rows()[1:2]), limit=3, streaming=True)
    assert empty.column_names == ["messages"] and len(empty) == 0
