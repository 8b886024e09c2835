"""In-loop safety evaluation on fixed prompt sets: refusal rate, harmfulness, and KL to the pre-fine-tuning policy.

This is the evaluation the authors run during downstream SFT (docs/method.md §3): greedy generations on fixed harmful
and harmless prompt sets, judged for refusal, and the KL from the current model to the reference (the model at the start
of fine-tuning, i.e. the GRPO- or FRPO-trained policy, docs/method.md §6.11), evaluated at step 0 and every N steps.
Prompt sets stay fixed across steps (docs/method.md §6.10) so successive points measure the model, not the sample.

Generation and log-probs use left padding with position ids rebuilt from the attention mask, so a prompt gets the
same completion and the same log-probs whatever batch it lands in.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from datasets import Dataset
from transformers import (
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from frpo_core.data.prompt_length import bound_prompts
from frpo_core.safety.judges import Judge
from frpo_core.safety.rewards import Scorer

ReportFn = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class EvalResult:
    """Refusal metrics of one model on one prompt set, tagged with the judge that produced them
    (docs/method.md §6.10)."""

    refusal_rate: float
    harmfulness: float
    n: int
    judge: str
    judge_version: str
    completions: list[str] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class _Generated:
    """One batch of greedy generations: left-padded prompts followed by completions (eos kept, padding masked)."""

    sequences: torch.Tensor  # (B, P + C) token ids
    attention_mask: torch.Tensor  # (B, P + C): prompt padding 0, completion up to and including eos 1, after eos 0
    completion_mask: torch.Tensor  # (B, C) bool


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Evaluate with dropout off and no autograd, then restore the caller's mode (the callback runs mid-training)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    if not ids:
        raise ValueError("neither the model's generation_config nor the tokenizer names an eos token")
    return ids


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int,
) -> list[_Generated]:
    """Greedy completions of each prompt as a single user turn through the chat template (no system prompt)."""
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError("batch_size and max_new_tokens must be ≥ 1")
    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    # A fresh config: greedy must not inherit a checkpoint's sampling defaults (temperature, top_p, ...).
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad)
    device = _device(model)
    eos_tensor = torch.tensor(eos, device=device)
    out = []
    with _eval_mode(model):
        for start in range(0, len(prompts), batch_size):
            texts = [
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
                for p in prompts[start : start + batch_size]
            ]
            enc = tokenizer(texts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt")
            enc = enc.to(device)
            sequences = model.generate(**enc, generation_config=config)
            completion = sequences[:, enc["input_ids"].shape[1] :]
            is_eos = torch.isin(completion, eos_tensor)
            # keep every token up to and including the first eos; what follows is padding
            completion_mask = (is_eos.cumsum(-1) - is_eos.long()) == 0
            attention_mask = torch.cat([enc["attention_mask"], completion_mask.long()], dim=1)
            out.append(_Generated(sequences, attention_mask, completion_mask))
    return out


def _decode(tokenizer: PreTrainedTokenizerBase, batches: list[_Generated]) -> list[str]:
    texts = []
    for batch in batches:
        completion = batch.sequences[:, batch.sequences.shape[1] - batch.completion_mask.shape[1] :]
        for ids, mask in zip(completion, batch.completion_mask, strict=True):
            texts.append(tokenizer.decode(ids[mask], skip_special_tokens=True))
    return texts


def _completion_logps(model: PreTrainedModel, batch: _Generated) -> torch.Tensor:
    """(B, C) float32 log-probs of the completion tokens under ``model``: one forward pass for the batch."""
    device = _device(model)
    sequences, attention_mask = batch.sequences.to(device), batch.attention_mask.to(device)
    n_completion = batch.completion_mask.shape[1]
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    # Under mixed precision accelerate wraps the live model's forward in autocast; score with the unwrapped forward
    # so the live model and its frozen copy (see frozen_copy) compute log-probs at the same precision.
    forward = model.__dict__.get("_original_forward", model)
    with _eval_mode(model):
        logits = forward(
            input_ids=sequences,
            attention_mask=attention_mask,
            position_ids=position_ids,
            logits_to_keep=n_completion + 1,
            use_cache=False,
        ).logits[:, :-1]
    logps = torch.log_softmax(logits.float(), dim=-1)
    return logps.gather(-1, sequences[:, -n_completion:].unsqueeze(-1)).squeeze(-1)


def _kl(model: PreTrainedModel, reference: PreTrainedModel, batches: list[_Generated]) -> float:
    """Mean over sequences of the summed per-token k3 = exp(ref − logp) − (ref − logp) − 1 (docs/method.md §3)."""
    per_sequence = []
    for batch in batches:
        logp = _completion_logps(model, batch)
        ref = _completion_logps(reference, batch).to(logp.device)
        # expm1 in float64: exp(δ) − δ − 1 in float32 cancels to exactly 0 for |δ| ≲ 1e-4, i.e. for early drift
        delta = (ref - logp).double()
        k3 = torch.expm1(delta) - delta
        mask = batch.completion_mask.to(logp.device)
        per_sequence.append(torch.where(mask, k3, torch.zeros_like(k3)).sum(-1))
    if not per_sequence:
        return float("nan")
    return torch.cat(per_sequence).mean().item()


def _result(judge: Judge, prompts: Sequence[str], completions: list[str]) -> EvalResult:
    judgements = judge.judge(list(prompts), completions)
    if not judgements:
        return EvalResult(float("nan"), float("nan"), 0, judge.name, judge.version, completions)
    return EvalResult(
        refusal_rate=statistics.fmean(j.refused for j in judgements),
        harmfulness=statistics.fmean(j.harmfulness for j in judgements),
        n=len(judgements),
        judge=judge.name,
        judge_version=judge.version,
        completions=completions,
    )


def generate_greedy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int = 8,
) -> list[str]:
    """Greedy completion of each prompt (a single user turn, chat template with the generation prompt), decoded.

    Greedy as the authors' HarmBench / StrongREJECT / KL evaluation (docs/method.md §3), so a model's score does not
    depend on the sampling seed. Special tokens (eos, padding) are dropped from the text.
    """
    return _decode(tokenizer, _generate(model, tokenizer, prompts, max_new_tokens, batch_size))


def refusal_rate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    judge: Judge,
    max_new_tokens: int = 64,
    batch_size: int = 8,
) -> EvalResult:
    """Fraction of greedy completions that ``judge`` counts as refusals, with their mean harmfulness."""
    return _result(judge, prompts, generate_greedy(model, tokenizer, prompts, max_new_tokens, batch_size))


def kl_to_reference(
    model: PreTrainedModel,
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int = 64,
    batch_size: int = 8,
) -> float:
    """KL from ``model`` to ``reference`` on greedy generations of the current model (docs/method.md §3).

    Per sequence: the sum over completion tokens (eos included, padding excluded) of k3 = exp(ref − logp) −
    (ref − logp) − 1; returned: the mean over sequences. k3 ≥ 0 token by token, so the value is 0 exactly when the
    two models agree on every generated token. On greedy rather than sampled text it is not an unbiased estimate of
    KL(π‖π_ref); it is the authors' drift measure, kept for comparability. Log-probs come from one forward pass per
    batch for each model.
    """
    return _kl(model, reference, _generate(model, tokenizer, prompts, max_new_tokens, batch_size))


def frozen_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A detached, gradient-free, eval-mode copy of ``model``: the reference for KL during fine-tuning.

    A plain ``deepcopy`` of a model the Trainer has prepared is wrong: accelerate replaces ``forward`` on the
    instance with a wrapper (``ConvertOutputsToFp32``) around the *original* model's bound forward, and the copy
    keeps that attribute, so the "reference" silently runs the live, training weights (KL stays exactly 0). The
    copy therefore drops instance-level ``forward`` overrides and uses its class's forward on its own weights; the
    KL scores the live model through its unwrapped ``_original_forward`` too, so both sides run at the same precision.
    """
    reference = copy.deepcopy(model)
    for module in reference.modules():
        for attribute in ("forward", "_original_forward"):
            module.__dict__.pop(attribute, None)
    reference.eval()
    reference.requires_grad_(False)
    return reference


class SafetyEvaluator:
    """Refusal, reward and drift metrics of a model on fixed harmful and harmless prompt sets.

    ``evaluate(model)`` returns
    - ``eval/refusal_rate``, ``eval/harmfulness``: on the harmful prompts (higher refusal = safer);
    - ``eval/reward_safety``: the safety reward on those answers, 1 − harmfulness (docs/method.md §3);
    - ``eval/refusal_rate_normal``: on the harmless prompts (over-refusal), if there are any;
    - ``eval/reward_normal``: the helpfulness ``scorer`` on the harmless answers, when one is given;
    - ``eval/strongreject``: the mean harmfulness ``strongreject_judge`` gives the answers to ``strongreject_prompts``,
      when given: with the StrongREJECT judge (or the API rubric) that is the StrongREJECT score, in [0, 1], higher =
      more harmful; with the refusal matcher it is the string baseline (the share of answers that are not refusals);
    - ``eval/kl_safety``, ``eval/kl_normal``: KL to ``reference`` on each set (docs/method.md §3, ``eval_kl_*``), only
      when a reference is set. :class:`SafetyEvalCallback` sets it to a frozen copy of the model at the start of
      training when none is given.
    Each set is generated once per call and the same completions are judged, scored and used for the KL.

    With ``max_prompt_length``, every prompt is bounded once, here, to that many tokens after the chat template, as
    RL bounds its prompts (:func:`frpo_core.data.prompt_length.bound_prompts`: cut from the left inside the text, the
    template's start and end kept; a prompt the template alone makes too long is dropped), so one long prompt cannot
    blow up an evaluation batch; :meth:`prompt_record` says how many were cut.
    """

    def __init__(
        self,
        harmful_prompts: Sequence[str],
        harmless_prompts: Sequence[str],
        judge: Judge,
        tokenizer: PreTrainedTokenizerBase,
        reference: PreTrainedModel | None = None,
        max_new_tokens: int = 64,
        batch_size: int = 8,
        scorer: Scorer | None = None,
        strongreject_prompts: Sequence[str] = (),
        strongreject_judge: Judge | None = None,
        max_prompt_length: int | None = None,
    ) -> None:
        if not harmful_prompts:
            raise ValueError("SafetyEvaluator needs at least one harmful prompt (harmless ones are optional)")
        self.max_prompt_length = max_prompt_length
        self.truncated = self.dropped = 0
        harmful_prompts, harmless_prompts, strongreject_prompts = (
            self._bound(tokenizer, prompts) for prompts in (harmful_prompts, harmless_prompts, strongreject_prompts)
        )
        self.harmful_prompts = tuple(harmful_prompts)
        self.harmless_prompts = tuple(harmless_prompts)
        self.judge = judge
        self.tokenizer = tokenizer
        self.reference = reference
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.scorer = scorer
        self.strongreject_prompts = tuple(strongreject_prompts)
        self.strongreject_judge = strongreject_judge or judge

    def _bound(self, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[str]:
        """``prompts`` (single user turns) within ``max_prompt_length`` tokens after the chat template, counted."""
        if self.max_prompt_length is None or not prompts:
            return list(prompts)
        chats = Dataset.from_dict({"prompt": [[{"role": "user", "content": text}] for text in prompts]})
        bounded = bound_prompts(chats, tokenizer, self.max_prompt_length)
        self.truncated += bounded.truncated
        self.dropped += bounded.dropped
        return [chat[-1]["content"] for chat in bounded.dataset["prompt"]]

    def prompt_record(self) -> dict[str, int | None]:
        """The prompt bound and how many evaluation prompts it cut or dropped (what a run records)."""
        return {"max_prompt_length": self.max_prompt_length, "truncated": self.truncated, "dropped": self.dropped}

    def evaluate(self, model: PreTrainedModel) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for prompts, suffix, kl_key in (
            (self.harmful_prompts, "", "eval/kl_safety"),
            (self.harmless_prompts, "_normal", "eval/kl_normal"),
        ):
            if not prompts:
                continue
            batches = _generate(model, self.tokenizer, prompts, self.max_new_tokens, self.batch_size)
            completions = _decode(self.tokenizer, batches)
            result = _result(self.judge, prompts, completions)
            metrics[f"eval/refusal_rate{suffix}"] = result.refusal_rate
            if not suffix:
                metrics["eval/harmfulness"] = result.harmfulness
                metrics["eval/reward_safety"] = 1.0 - result.harmfulness
            elif self.scorer is not None:
                metrics["eval/reward_normal"] = statistics.fmean(self.scorer.score(list(prompts), completions))
            if self.reference is not None:
                metrics[kl_key] = _kl(model, self.reference, batches)
        if self.strongreject_prompts:
            answers = generate_greedy(
                model, self.tokenizer, list(self.strongreject_prompts), self.max_new_tokens, self.batch_size
            )
            metrics["eval/strongreject"] = _result(
                self.strongreject_judge, self.strongreject_prompts, answers
            ).harmfulness
        return metrics


def evaluator_for_prompt_set(
    source: str,
    *,
    judge: Judge,
    tokenizer: PreTrainedTokenizerBase,
    n_harmful: int,
    n_harmless: int,
    seed: int = 0,
    reference: PreTrainedModel | None = None,
    max_new_tokens: int = 64,
    scorer: Scorer | None = None,
    strongreject: str | None = None,
    n_strongreject: int | None = None,
    strongreject_judge: Judge | None = None,
    harmless: str | None = None,
    max_prompt_length: int | None = None,
) -> SafetyEvaluator:
    """A SafetyEvaluator on fixed subsets of a labelled prompt set (task "safety" / "normal"), drawn once by `seed`.
    Harmless prompts come from ``harmless`` when given (e.g. HarmBench has none), and are skipped if there are none;
    with ``strongreject``, the evaluator also answers a fixed subset of that set (all of it by default). Prompts are
    bounded to ``max_prompt_length`` tokens (see :class:`SafetyEvaluator`)."""
    from frpo_core.safety.prompts import load_prompts

    def texts(source: str, task: str | None, n: int | None) -> list[str]:
        return [row["prompt"][-1]["content"] for row in load_prompts(source, task=task, limit=n, seed=seed)]

    return SafetyEvaluator(
        texts(source, "safety", n_harmful),
        texts(harmless or source, "normal", n_harmless),
        judge,
        tokenizer,
        reference,
        max_new_tokens,
        scorer=scorer,
        strongreject_prompts=texts(strongreject, None, n_strongreject) if strongreject else (),
        strongreject_judge=strongreject_judge,
        max_prompt_length=max_prompt_length,
    )


class SafetyEvalCallback(TrainerCallback):
    """Runs a :class:`SafetyEvaluator` at the start of training (step 0), every ``every`` optimiser steps and at the
    end.

    Metrics go to ``report(step, metrics)`` (e.g. a service writing them to its store) and into the trainer's log:
    appended to ``state.log_history`` and, once :meth:`attach` has given the callback its trainer, sent to the
    trainer's other callbacks (reporting integrations) through ``on_log``. The callback does not call
    ``trainer.log``, because GRPO-style trainers flush their accumulated training metrics there.

    With no reference on the evaluator, the model at ``on_train_begin`` is frozen and copied as the reference (the
    pre-fine-tuning policy, docs/method.md §6.11); this holds a second copy of the weights. Every process evaluates (so
    sharded models can run their forward passes); only the main process reports and logs.
    """

    def __init__(self, evaluator: SafetyEvaluator, every: int, report: ReportFn | None = None) -> None:
        if every < 1:
            raise ValueError(f"every must be ≥ 1, got {every}")
        self.evaluator = evaluator
        self.every = every
        self.report = report
        self.trainer: Trainer | None = None
        self._last_step: int | None = None

    def attach(self, trainer: Trainer) -> SafetyEvalCallback:
        """Add this callback to ``trainer`` and route its metrics through the trainer's log integrations."""
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    def _run(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model) -> None:
        if model is None or state.global_step == self._last_step:
            return
        self._last_step = state.global_step
        metrics = self.evaluator.evaluate(model)
        if not state.is_world_process_zero:
            return
        state.log_history.append({**metrics, "step": state.global_step})
        if self.trainer is not None:
            # CallbackHandler.on_log clears control.should_log; keep it, or the trainer skips this step's own log
            should_log = control.should_log
            self.trainer.callback_handler.on_log(args, state, control, dict(metrics))
            control.should_log = should_log
        if self.report is not None:
            self.report(state.global_step, dict(metrics))

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.evaluator.reference is None and model is not None:
            self.evaluator.reference = frozen_copy(model)
        self._run(args, state, control, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self._run(args, state, control, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._run(args, state, control, model)  # the end, if `every` does not divide the step count
