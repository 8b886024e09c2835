"""Which masking downstream SFT uses with a model's chat template: assistant-only where the template marks the answer
with `{% generation %}`, the prompt-completion format's completion-only loss for any other template, and a refusal,
naming the fix, only where neither can work."""

from __future__ import annotations

import pytest
from datasets import Dataset

from frpo_core.jobs.sft import as_prompt_completion, choose_masking, fit_template
from frpo_core.tiny import CHAT_TEMPLATE, TinyModelConfig, build_tokenizer

PLAIN_TEMPLATE = CHAT_TEMPLATE.replace("{%- generation %}", "").replace("{%- endgeneration %}", "")
"""The tiny model's template without its generation markers: what most real chat templates look like."""

USER_ASSISTANT_ONLY = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{ raise_exception('Conversation roles must alternate user/assistant') }}"
    "{%- elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{%- else %}{{ message['content'] + '</s>' }}{%- endif %}"
    "{%- endfor %}"
)
"""A template that refuses system turns, as Mistral-7B-Instruct-v0.1's does."""


def conversation() -> list[dict[str, str]]:
    """The code SFT's shape: an empty system turn, the user's request, the answer."""
    return [
        {"role": "system", "content": ""},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
    ]


@pytest.fixture
def tokenizer():
    return build_tokenizer(TinyModelConfig().vocab_size)


def test_a_template_with_generation_markers_gets_assistant_only_loss(tokenizer):
    assert choose_masking(tokenizer)[0] == "assistant"
    assert choose_masking(tokenizer, "completion")[0] == "completion"  # asked for: any template can do it


def test_a_template_without_markers_gets_completion_only_loss(tokenizer):
    tokenizer.chat_template = PLAIN_TEMPLATE
    masking, why = choose_masking(tokenizer)
    assert masking == "completion" and "no {% generation %} markers" in why


def test_assistant_masking_on_a_template_trl_cannot_patch_is_refused_naming_the_fix(tokenizer):
    tokenizer.chat_template = PLAIN_TEMPLATE
    with pytest.raises(ValueError, match="use masking='completion'"):
        choose_masking(tokenizer, "assistant")


def test_a_model_without_a_chat_template_is_refused_naming_the_fix(tokenizer):
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat template.*add a chat_template"):
        choose_masking(tokenizer)


def test_conversations_become_prompt_completion_pairs_on_their_last_answer():
    turns = conversation()
    pairs = as_prompt_completion(Dataset.from_dict({"messages": [turns]}))
    assert pairs[0] == {"prompt": turns[:2], "completion": turns[2:]}
    with pytest.raises(ValueError, match=r"roles \['user'\] does not end in an assistant answer"):
        as_prompt_completion(Dataset.from_dict({"messages": [[{"role": "user", "content": "hi"}]]}))


def test_an_empty_system_turn_is_dropped_where_the_template_refuses_system_turns(tokenizer):
    tokenizer.chat_template = USER_ASSISTANT_ONLY
    turns = conversation()
    fitted = fit_template(Dataset.from_dict({"messages": [turns]}), tokenizer)
    assert fitted[0]["messages"] == turns[1:]
    spoken = [{"role": "system", "content": "Be brief."}, *turns[1:]]
    with pytest.raises(ValueError, match="refuses this SFT data's conversations.*no system turn"):
        fit_template(Dataset.from_dict({"messages": [spoken]}), tokenizer)


def test_a_template_that_accepts_system_turns_keeps_them(tokenizer):
    turns = conversation()
    assert fit_template(Dataset.from_dict({"messages": [turns]}), tokenizer)[0]["messages"] == turns
