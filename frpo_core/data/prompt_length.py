"""Prompts bounded in tokens, as the model sees them (after its chat template).

TRL 1.16's ``GRPOConfig`` has no ``max_prompt_length``, and an unbounded prompt is costly: one of the authors'
red-teaming prompts reaches ~1,500 tokens against a median of ~80, so the RL step (and the evaluation batch) that
holds it takes ten times as long and, on a GPU, may run out of memory half-way through a run. The authors bounded
prompts at 1,024 tokens. :func:`bound_prompts` does so once, in the data, with the model's own tokenizer.

A long prompt is cut from the left *inside its messages' text*: the chat template's own tokens (its system prompt,
the turn markers and the generation prompt at its end) all survive, so the model still sees a well-formed chat that
ends where its answer begins. ``overlong="drop"`` removes such prompts instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from frpo_core.data.conversations import as_chat

Overlong = Literal["truncate", "drop"]
OVERLONG = ("truncate", "drop")

_CUT_ATTEMPTS = 8  # re-tokenising a cut text can merge tokens differently; a few more cuts always settle it


@dataclass(frozen=True)
class BoundedPrompts:
    """A prompt set within ``max_prompt_length`` tokens, and how many prompts that took."""

    dataset: Dataset
    max_prompt_length: int | None
    truncated: int
    dropped: int

    def record(self) -> dict[str, Any]:
        """What a run records about the bound (an event on the run): the bound, and the prompts cut or dropped."""
        return {"max_prompt_length": self.max_prompt_length, "truncated": self.truncated, "dropped": self.dropped}


def prompt_length(tokenizer: PreTrainedTokenizerBase, prompt: str | Sequence[Mapping[str, Any]]) -> int:
    """The prompt's length in tokens as the model sees it: a chat list through the chat template with the generation
    prompt (as GRPO and the evaluation render it), a plain string as it is."""
    if isinstance(prompt, str):
        return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    rendered = tokenizer.apply_chat_template(as_chat(prompt), add_generation_prompt=True, tokenize=True)
    return len(rendered["input_ids"] if isinstance(rendered, Mapping) else rendered)


def fit_prompt(
    tokenizer: PreTrainedTokenizerBase, prompt: str | Sequence[Mapping[str, Any]], max_prompt_length: int
) -> str | list[dict[str, str]] | None:
    """``prompt`` within ``max_prompt_length`` tokens: as it is when it fits; else with its messages' text cut from
    the left (the earliest non-system message first), so the template's start and end survive; ``None`` when even
    empty messages do not fit (the template alone is longer than the bound)."""
    length = prompt_length(tokenizer, prompt)
    if length <= max_prompt_length:
        return prompt if isinstance(prompt, str) else as_chat(prompt)
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else as_chat(prompt)
    for _ in range(_CUT_ATTEMPTS):
        messages = _cut_left(tokenizer, messages, length - max_prompt_length)
        if messages is None:
            return None
        length = prompt_length(tokenizer, messages[0]["content"] if isinstance(prompt, str) else messages)
        if length <= max_prompt_length:
            return messages[0]["content"] if isinstance(prompt, str) else messages
    return None


def _cut_left(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], excess: int
) -> list[dict[str, str]] | None:
    """``messages`` with ``excess`` tokens removed from the left of their text (system turns kept whole), or ``None``
    when there is not that much text to remove."""
    cut = []
    for message in messages:
        ids = tokenizer(message["content"], add_special_tokens=False)["input_ids"]
        if message["role"] == "system" or excess <= 0 or not ids:
            cut.append(message)
            continue
        taken = min(excess, len(ids))
        excess -= taken
        cut.append({"role": message["role"], "content": tokenizer.decode(ids[taken:]).lstrip()})
    return cut if excess <= 0 else None


def bound_prompts(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase | None,
    max_prompt_length: int | None,
    overlong: Overlong = "truncate",
) -> BoundedPrompts:
    """``dataset``'s ``prompt`` column (chat lists or strings) within ``max_prompt_length`` tokens after the chat
    template: longer prompts cut from the left (:func:`fit_prompt`) or, with ``overlong="drop"``, removed; the other
    columns (task, answer, ...) are kept. ``None`` leaves the prompts as they are.

    Every prompt is tokenised once; only the long ones are cut. A prompt the template alone makes too long is dropped
    in either mode, and if that leaves nothing the error says to raise ``max_prompt_length``."""
    if overlong not in OVERLONG:
        raise ValueError(f"overlong={overlong!r} must be one of {OVERLONG}")
    if max_prompt_length is None:
        return BoundedPrompts(dataset, None, 0, 0)
    if tokenizer is None:
        raise ValueError("a max_prompt_length needs the model's tokenizer to count tokens: pass tokenizer")
    if max_prompt_length < 1:
        raise ValueError(f"max_prompt_length={max_prompt_length} must be ≥ 1, or None for no bound")
    lengths = [prompt_length(tokenizer, prompt) for prompt in dataset["prompt"]]
    long = [i for i, length in enumerate(lengths) if length > max_prompt_length]
    if not long:
        return BoundedPrompts(dataset, max_prompt_length, 0, 0)
    if overlong == "drop":
        fitted: dict[int, Any] = {}
        keep = [i for i, length in enumerate(lengths) if length <= max_prompt_length]
    else:
        fitted = {i: fit_prompt(tokenizer, dataset[i]["prompt"], max_prompt_length) for i in long}
        keep = [i for i in range(len(dataset)) if fitted.get(i, ()) is not None]
    if not keep:
        raise ValueError(
            f"max_prompt_length={max_prompt_length} leaves no prompt: the chat template alone is longer; raise "
            f"max_prompt_length (the shortest prompt here takes {min(lengths)} tokens)"
        )
    bounded = dataset.select(keep)
    if fitted:
        replaced = {position: fitted[i] for position, i in enumerate(keep) if i in fitted}
        bounded = bounded.map(lambda row, position: _replace(row, replaced.get(position)), with_indices=True)
    truncated = sum(1 for prompt in fitted.values() if prompt is not None)
    return BoundedPrompts(bounded, max_prompt_length, truncated, len(dataset) - len(keep))


def _replace(row: Mapping[str, Any], prompt: str | list[dict[str, str]] | None) -> dict[str, Any]:
    return {"prompt": row["prompt"] if prompt is None else prompt}
