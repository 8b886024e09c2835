"""Evaluations computed once: what makes two safety evaluations the same, and when one may stand for another.

A sweep evaluates the same weights on the same prompts again and again: every RL run from one warm start begins by
evaluating that warm start, and a pipeline's fine-tuning begins by evaluating the RL run's final model, which the RL
run evaluated at its end. An evaluation is a deterministic function of the weights, the tokenizer, the prompts, the
decoding (greedy length; samples, length, temperature and the generator's seed), the judges and the numerics it ran
on; :func:`fingerprint` hashes exactly those, so equal fingerprints mean the same answers, verdicts and scores.

The KL measures also depend on the reference. An earlier evaluation stands for a new one (:func:`reuse`) when its
reference was the same weights, or when the new evaluation's reference *is* the model it evaluates (step 0 of any
run: the model is its own reference), where every KL is exactly 0 (:func:`as_own_reference`); the earlier one must
have measured KL too, so the reused metrics hold the same keys an evaluation would have written.

Only single-process evaluations are fingerprinted: a sharded model's weights are not all in one process.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import torch
import transformers

if TYPE_CHECKING:
    from frpo_core.safety.evaluation import SafetyEvaluator

KL_KEYS = ("eval/kl_safety", "eval/kl_normal", "eval/kl_safety_sampled", "eval/kl_normal_sampled")


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 over the model's state dict (names, dtypes, shapes and bytes, sorted by name): equal digests, equal
    weights, whatever file or process they came from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Fingerprint:
    """What one evaluation depends on: ``answers`` (everything but the reference, weights included), the evaluated
    ``weights`` and the ``reference``'s weights (None without a reference: no KL)."""

    answers: str
    weights: str
    reference: str | None

    @property
    def own_reference(self) -> bool:
        """The model is its own reference (step 0 of a run): every KL is 0."""
        return self.reference == self.weights


def fingerprint(evaluator: SafetyEvaluator, model: torch.nn.Module) -> Fingerprint | None:
    """The fingerprint of ``evaluator`` run on ``model`` now, or None where it cannot be told (a tokenizer without a
    serialisable fast backend)."""
    backend = getattr(evaluator.tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    weights = weights_digest(model)
    sampling = evaluator.sampling
    inputs = {
        "weights": weights,
        "tokenizer": _tokenizer_digest(backend),
        "chat_template": evaluator.tokenizer.chat_template,
        "special": [evaluator.tokenizer.pad_token_id, evaluator.tokenizer.eos_token_id],
        "prompts": [evaluator.harmful_prompts, evaluator.harmless_prompts, evaluator.strongreject_prompts],
        "judge": _identity(evaluator.judge),
        "scorer": _identity(evaluator.scorer),
        "strongreject_judge": _identity(evaluator.strongreject_judge) if evaluator.strongreject_prompts else None,
        "max_new_tokens": evaluator.max_new_tokens,
        "batch_size": evaluator.batch_size,
        "sampling": None if sampling is None else [sampling.samples, sampling.max_new_tokens, sampling.temperature],
        "sampling_seed": None if sampling is None else sampling.seed,
        # the numerics: another kernel path or thread count may round differently and flip a greedy answer
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "device": str(next(model.parameters()).device),
    }
    answers = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=list).encode()).hexdigest()
    return Fingerprint(answers, weights, evaluator.reference_digest())


def _tokenizer_digest(backend) -> str:
    """SHA-256 of a fast tokenizer's vocabulary, merges, normalizer, pre-tokenizer and special tokens; not of its
    padding and truncation state, which every batched call sets (the evaluation pads the same way whatever it says)."""
    serialised = json.loads(backend.to_str())
    serialised.pop("padding", None)
    serialised.pop("truncation", None)
    return hashlib.sha256(json.dumps(serialised, sort_keys=True).encode()).hexdigest()


def _identity(scorer: object | None) -> str | None:
    return None if scorer is None else f"{scorer.name}@{scorer.version}"


class Reuse(StrEnum):
    """How an earlier evaluation stands for a new one."""

    same = "same"  # same answers and same reference: every metric as it was
    own_reference = "own reference"  # same answers; the new model is its own reference, so every KL is 0


def reuse(earlier: Fingerprint, now: Fingerprint) -> Reuse | None:
    """Whether the evaluation fingerprinted ``earlier`` may stand for ``now``, and how (None: it may not)."""
    if earlier.answers != now.answers:
        return None
    if earlier.reference == now.reference:
        return Reuse.same
    if now.own_reference and earlier.reference is not None:
        return Reuse.own_reference
    return None


def as_own_reference(metrics: Mapping[str, float]) -> dict[str, float]:
    """``metrics`` with every KL measure (and its standard error) 0, as they are when the model is its reference."""
    return {key: 0.0 if key.removesuffix("_se") in KL_KEYS else value for key, value in metrics.items()}


class EvaluationMemo(Protocol):
    """Where evaluations are remembered by fingerprint (e.g. a service's store, shared by its workers)."""

    def recall(self, step: int, now: Fingerprint) -> dict[str, float] | None:
        """The metrics of an earlier evaluation that may stand for ``now`` (:func:`reuse`), made this step's: its
        judged answers kept for it as well, with where they came from; None if there is none."""

    def remember(self, step: int, fingerprint: Fingerprint, metrics: Mapping[str, float]) -> None:
        """Keep this step's evaluation for later ones."""
