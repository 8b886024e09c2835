"""Prompts bounded in tokens after the chat template: short ones untouched, long ones cut from the left inside their
text (the template's start and end kept) or dropped, and a bound too small for the template refused by name."""

from __future__ import annotations

import pytest
from datasets import Dataset

from frpo_core.data.prompt_length import bound_prompts, fit_prompt, prompt_length
from frpo_core.tiny import TinyModelConfig, build_tokenizer

LONG = " ".join(f"word{i % 10}" for i in range(300)) + " the request at the end"


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(TinyModelConfig().vocab_size)


def chats(*texts: str, system: str | None = None) -> Dataset:
    head = [{"role": "system", "content": system}] if system else []
    prompts = [[*head, {"role": "user", "content": text}] for text in texts]
    return Dataset.from_dict({"prompt": prompts, "task": [f"task{i}" for i in range(len(texts))]})


def test_prompts_within_the_bound_are_left_as_they_are(tokenizer):
    data = chats("hello there", "what is 2 + 2?")
    bounded = bound_prompts(data, tokenizer, 512)
    assert bounded.dataset["prompt"] == data["prompt"]
    assert bounded.record() == {"max_prompt_length": 512, "truncated": 0, "dropped": 0}
    assert bound_prompts(data, None, None).record()["max_prompt_length"] is None  # no bound, no tokenizer needed


def test_a_long_prompt_is_cut_from_the_left_keeping_the_templates_start_and_end(tokenizer):
    data = chats("hello there", LONG, system="Be brief.")
    assert prompt_length(tokenizer, data[1]["prompt"]) > 64
    bounded = bound_prompts(data, tokenizer, 64)
    assert bounded.record() == {"max_prompt_length": 64, "truncated": 1, "dropped": 0}
    short, cut = bounded.dataset["prompt"]
    assert short == data[0]["prompt"] and bounded.dataset["task"] == ["task0", "task1"]
    assert prompt_length(tokenizer, cut) <= 64
    assert cut[0] == {"role": "system", "content": "Be brief."}  # a system turn is kept whole
    assert cut[1]["content"].endswith("the request at the end") and LONG.endswith(cut[1]["content"])
    rendered = tokenizer.apply_chat_template(cut, add_generation_prompt=True, tokenize=False)
    assert rendered.endswith("<|im_start|>assistant\n")  # the generation prompt survives


def test_drop_leaves_long_prompts_out_and_counts_them(tokenizer):
    bounded = bound_prompts(chats("hello there", LONG), tokenizer, 64, overlong="drop")
    assert bounded.record() == {"max_prompt_length": 64, "truncated": 0, "dropped": 1}
    assert bounded.dataset["task"] == ["task0"]


def test_a_plain_string_prompt_is_cut_as_text(tokenizer):
    cut = fit_prompt(tokenizer, LONG, 20)
    assert isinstance(cut, str) and prompt_length(tokenizer, cut) <= 20 and LONG.endswith(cut)


def test_a_bound_shorter_than_the_template_is_refused_naming_the_field(tokenizer):
    with pytest.raises(ValueError, match="max_prompt_length=4 leaves no prompt.*raise max_prompt_length"):
        bound_prompts(chats("hello", "there"), tokenizer, 4)
    with pytest.raises(ValueError, match="overlong='keep'"):
        bound_prompts(chats("hello"), tokenizer, 64, overlong="keep")
