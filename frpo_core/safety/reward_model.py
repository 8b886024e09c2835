"""The helpfulness reward: a sequence-classification reward model read as ``sigmoid(logit)``.

The authors rewarded harmless ("normal") prompts with the sigmoid of the logit of
``allenai/Llama-3.1-8B-Instruct-RM-RB2`` (revision "2"), so that this reward lies in [0, 1] like the safety reward
and the two can share one λ (docs/method.md §2.3). :class:`RewardModelScorer` loads any single-logit
``AutoModelForSequenceClassification`` with its tokenizer and scores (prompt, response) pairs rendered as a user turn
and an assistant turn through the tokenizer's chat template, the way such reward models were trained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import cached_file

from frpo_core.safety.judges import _model_fingerprint

Prompt = str | Sequence[Mapping[str, str]]
"""A prompt: a user message, or the conversation so far as chat messages (``role``/``content``)."""


class RewardModelScorer:
    """Scores responses with a reward model: ``sigmoid(logit)`` in (0, 1), one per (prompt, response) pair.

    ``path`` is a local checkpoint directory or a hub id (with ``revision``). Batches of ``batch_size`` are padded on
    the right (the model reads its logit at each row's last real token, so padding does not change a score) and
    truncated to ``max_length`` tokens from the right. The model runs in eval mode without gradients.

    ``name`` is ``reward-model:<path>`` and ``version`` a fingerprint of the weights (for a hub id, of the snapshot
    they loaded from), the chat template and ``max_length``: everything that changes a score, as judges record theirs.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        revision: str | None = None,
        batch_size: int = 8,
        max_length: int = 4096,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if batch_size < 1 or max_length < 1:
            raise ValueError("batch_size and max_length must be ≥ 1")
        self.name = f"reward-model:{path}"
        self.batch_size = batch_size
        self.max_length = max_length
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(path, revision=revision)
        load_kwargs = {"dtype": dtype} if dtype is not None else {}
        self.model: PreTrainedModel = AutoModelForSequenceClassification.from_pretrained(
            path, revision=revision, **load_kwargs
        ).to(device)
        self.model.eval()
        self.model.requires_grad_(False)
        if self.model.config.num_labels != 1:
            raise ValueError(f"{self.name}: a reward model has one logit; this one has {self.model.config.num_labels}")
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"{self.name}: the tokenizer has no chat template to render (prompt, response) pairs")
        self._align_pad_token()
        checkpoint = Path(path)
        if not checkpoint.is_dir():  # a hub id: the snapshot directory the files were loaded from
            checkpoint = Path(cached_file(str(path), "config.json", revision=revision)).parent
        settings = {
            "model": _model_fingerprint(checkpoint),
            "chat_template": hashlib.sha256(self.tokenizer.chat_template.encode("utf-8")).hexdigest(),
            "max_length": max_length,
        }
        self.version: str = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:12]

    def _align_pad_token(self) -> None:
        """Make the model look for padding with the id the tokenizer pads with (it finds each row's last real token
        as the last one that is not padding)."""
        if self.tokenizer.pad_token_id is None:
            pad_id = self.model.config.pad_token_id
            if pad_id is None:
                raise ValueError(f"{self.name}: neither the tokenizer nor the model config names a padding token")
            self.tokenizer.pad_token = self.tokenizer.convert_ids_to_tokens(pad_id)
        self.model.config.pad_token_id = self.tokenizer.pad_token_id

    def _render(self, prompt: Prompt, response: str) -> str:
        conversation = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        return self.tokenizer.apply_chat_template(
            [*conversation, {"role": "assistant", "content": response}], tokenize=False
        )

    @torch.no_grad()
    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        """``sigmoid(logit)`` for ``responses[i]`` as the reply to ``prompts[i]``, in order."""
        if len(prompts) != len(responses):
            raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses; pass one response per prompt")
        scores: list[float] = []
        for start in range(0, len(prompts), self.batch_size):
            end = start + self.batch_size
            texts = [self._render(p, r) for p, r in zip(prompts[start:end], responses[start:end], strict=True)]
            encoded = self.tokenizer(
                texts,
                add_special_tokens=False,  # the chat template already wrote any BOS
                padding=True,
                padding_side="right",
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.model.device)
            logits = self.model(**encoded, use_cache=False).logits[:, 0]
            scores.extend(torch.sigmoid(logits.float()).tolist())
        return scores
