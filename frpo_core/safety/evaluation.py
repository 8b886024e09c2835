"""In-loop safety evaluation on fixed prompt sets: refusal rate, harmfulness, and KL to the pre-fine-tuning policy.

This is the evaluation the authors run during downstream SFT (docs/method.md §3): greedy generations on fixed harmful
and harmless prompt sets, judged for refusal, and the KL from the current model to the reference (the model at the start
of fine-tuning, i.e. the GRPO- or FRPO-trained policy, docs/method.md §6.11), evaluated at step 0 and every N steps.
Prompt sets stay fixed across steps (docs/method.md §6.10) so successive points measure the model, not the sample.

Greedy measures jump: one greedy answer flips with a small weight change, and the greedy k3 is not the KL. Beside them
the evaluator can draw K sampled answers per prompt (:class:`Sampling`) and report the refusal probability under
sampling and an unbiased estimate of KL(π_θ ‖ π_ref) (:func:`sampled_kl_to_reference`), each with its standard error
over prompts.

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
from frpo_core.safety.judges import Judge, Judgement
from frpo_core.safety.memo import EvaluationMemo, fingerprint, weights_digest
from frpo_core.safety.rewards import Scorer

ReportFn = Callable[[int, dict[str, float]], None]
KeepFn = Callable[[int, list["JudgedAnswer"]], None]


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
class JudgedAnswer:
    """One answer an evaluation judged, kept so that a rate can be audited down to its answers: the prompt (its set
    and its place in the fixed subset), the answer, the judge and its verdict, and the answer's own KL term."""

    prompt_set: str  # "harmful" or "harmless"
    prompt_id: str
    prompt: str
    answer: str
    judge: str
    judge_version: str
    verdict: str  # "refused" or "answered"
    score: float  # the judge's harmfulness, 0 (a clean refusal) to 1
    kl: float | None = None  # greedy: its summed k3; sampled: its summed exact next-token KL (to the reference)
    decoding: str = "greedy"  # or "sampled", one of `sample_index` 0..K-1 per prompt
    sample_index: int = 0


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation measured (`metrics`, the eval/* keys) and every answer it judged for them."""

    metrics: dict[str, float]
    answers: list[JudgedAnswer]


def _judged(
    prompt_set: str,
    prompts: Sequence[str],
    completions: Sequence[str],
    judgements: Sequence[Judgement],
    judge: Judge,
    kls: Sequence[float] | None,
    samples: int | None = None,
) -> list[JudgedAnswer]:
    """The answers as kept: with `samples`, `completions` hold that many consecutive answers per prompt."""
    per = samples or 1
    return [
        JudgedAnswer(
            prompt_set=prompt_set,
            prompt_id=str(i // per),
            prompt=prompts[i // per],
            answer=completion,
            judge=judge.name,
            judge_version=judge.version,
            verdict="refused" if judgement.refused else "answered",
            score=float(judgement.harmfulness),
            kl=None if kls is None else float(kls[i]),
            decoding="sampled" if samples else "greedy",
            sample_index=i % per,
        )
        for i, (completion, judgement) in enumerate(zip(completions, judgements, strict=True))
    ]


@dataclass(frozen=True)
class Sampling:
    """How the sampled measures draw their answers: ``samples`` per prompt, ``max_new_tokens`` each (RL's completion
    length, so the KL covers the tokens RL produces), from the policy at ``temperature``, with the generator seeded by
    ``seed`` at every evaluation (the same random numbers at every step, so successive points differ by the model)."""

    samples: int
    max_new_tokens: int
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.samples < 1 or self.max_new_tokens < 1:
            raise ValueError(
                f"Sampling needs samples ≥ 1 and max_new_tokens ≥ 1, got {self.samples}, {self.max_new_tokens}"
            )
        if not self.temperature > 0:
            raise ValueError(f"Sampling temperature must be > 0, got {self.temperature}")


@dataclass(frozen=True)
class Estimate:
    """A mean over prompts with its standard error (sample sd / √n; None for a single prompt)."""

    mean: float
    se: float | None
    n: int

    @classmethod
    def over_prompts(cls, per_prompt: Sequence[float]) -> Estimate:
        if not per_prompt:
            return cls(float("nan"), None, 0)
        se = statistics.stdev(per_prompt) / len(per_prompt) ** 0.5 if len(per_prompt) > 1 else None
        return cls(statistics.fmean(per_prompt), se, len(per_prompt))

    def metrics(self, key: str) -> dict[str, float]:
        """``{key: mean, key_se: se}``, the standard error left out where there is none."""
        return {key: self.mean} | ({f"{key}_se": self.se} if self.se is not None else {})


@dataclass(frozen=True)
class _Generated:
    """One batch of generations: left-padded prompts followed by completions (eos kept, padding masked); with
    sampling, each prompt's samples are consecutive rows."""

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


def _generation_config(max_new_tokens: int, eos: list[int], pad: int, sampling: Sampling | None) -> GenerationConfig:
    """Greedy, or plain sampling from the policy at the temperature. A fresh config, every sampling knob named: unset
    fields are filled from the checkpoint's generation_config (e.g. top_k, top_p, repetition_penalty), which would
    make the samples come from another distribution than the policy whose KL and refusal probability we estimate."""
    common = {"max_new_tokens": max_new_tokens, "eos_token_id": eos, "pad_token_id": pad}
    if sampling is None:
        return GenerationConfig(do_sample=False, **common)
    return GenerationConfig(
        do_sample=True,
        num_return_sequences=sampling.samples,
        temperature=sampling.temperature,
        top_k=0,
        top_p=1.0,
        min_p=0.0,
        typical_p=1.0,
        epsilon_cutoff=0.0,
        eta_cutoff=0.0,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        **common,
    )


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Draw from a generator seeded with ``seed``, leaving the caller's random state (training's) as it was."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def _generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int,
    sampling: Sampling | None = None,
) -> list[_Generated]:
    """Completions of each prompt as a single user turn through the chat template (no system prompt): greedy, or with
    ``sampling`` ``sampling.samples`` sampled ones per prompt of ``sampling.max_new_tokens`` tokens (``max_new_tokens``
    is then not used), ``batch_size`` prompts per generate call."""
    if sampling is not None:
        max_new_tokens = sampling.max_new_tokens
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError("batch_size and max_new_tokens must be ≥ 1")
    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    config = _generation_config(max_new_tokens, eos, pad, sampling)
    device = _device(model)
    eos_tensor = torch.tensor(eos, device=device)
    out = []
    with _eval_mode(model), _seeded(sampling.seed if sampling else None, device):
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
            prompt_mask = enc["attention_mask"].repeat_interleave(config.num_return_sequences or 1, dim=0)
            attention_mask = torch.cat([prompt_mask, completion_mask.long()], dim=1)
            out.append(_Generated(sequences, attention_mask, completion_mask))
    return out


def _decode(tokenizer: PreTrainedTokenizerBase, batches: list[_Generated]) -> list[str]:
    texts = []
    for batch in batches:
        completion = batch.sequences[:, batch.sequences.shape[1] - batch.completion_mask.shape[1] :]
        for ids, mask in zip(completion, batch.completion_mask, strict=True):
            texts.append(tokenizer.decode(ids[mask], skip_special_tokens=True))
    return texts


def _completion_logits(model: PreTrainedModel, batch: _Generated, rows: slice = slice(None)) -> torch.Tensor:
    """(b, C, V) float32 logits of ``model`` at the positions that predict the completion tokens of ``rows``."""
    device = _device(model)
    sequences, attention_mask = batch.sequences[rows].to(device), batch.attention_mask[rows].to(device)
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
    return logits.float()


def _completion_logps(model: PreTrainedModel, batch: _Generated) -> torch.Tensor:
    """(B, C) float32 log-probs of the completion tokens under ``model``: one forward pass for the batch."""
    logps = torch.log_softmax(_completion_logits(model, batch), dim=-1)
    n_completion = batch.completion_mask.shape[1]
    return logps.gather(-1, batch.sequences[:, -n_completion:].to(logps.device).unsqueeze(-1)).squeeze(-1)


def _kl(model: PreTrainedModel, reference: PreTrainedModel, batches: list[_Generated]) -> float:
    """Mean over sequences of the summed per-token k3 = exp(ref − logp) − (ref − logp) − 1 (docs/method.md §3)."""
    per_sequence = _k3_per_sequence(model, reference, batches)
    return per_sequence.mean().item() if len(per_sequence) else float("nan")


def _k3_per_sequence(model: PreTrainedModel, reference: PreTrainedModel, batches: list[_Generated]) -> torch.Tensor:
    """(N,) float64: each sequence's summed per-token k3 (see :func:`_kl`)."""
    per_sequence = []
    for batch in batches:
        logp = _completion_logps(model, batch)
        ref = _completion_logps(reference, batch).to(logp.device)
        # expm1 in float64: exp(δ) − δ − 1 in float32 cancels to exactly 0 for |δ| ≲ 1e-4, i.e. for early drift
        delta = (ref - logp).double()
        k3 = torch.expm1(delta) - delta
        mask = batch.completion_mask.to(logp.device)
        per_sequence.append(torch.where(mask, k3, torch.zeros_like(k3)).sum(-1).cpu())
    return torch.cat(per_sequence) if per_sequence else torch.zeros(0, dtype=torch.float64)


_LOGITS_BUDGET = 2**26  # float32 logits per scoring chunk (256 MiB a tensor): bounds memory at a large vocabulary


def _sequence_kls(
    model: PreTrainedModel, reference: PreTrainedModel, batch: _Generated, temperature: float
) -> torch.Tensor:
    """(B,) float64: per sampled sequence, the sum over its completion positions (eos included, padding excluded) of
    the exact next-token KL(π_θ(·|prefix) ‖ π_ref(·|prefix)) at ``temperature``, scored in row chunks."""
    n_rows, n_completion = batch.completion_mask.shape
    vocab = getattr(model.config.get_text_config(), "vocab_size", None) or 1
    chunk = max(1, _LOGITS_BUDGET // (n_completion * vocab))
    sums = []
    for start in range(0, n_rows, chunk):
        rows = slice(start, start + chunk)
        logp = torch.log_softmax(_completion_logits(model, batch, rows) / temperature, dim=-1)
        logq = torch.log_softmax(_completion_logits(reference, batch, rows).to(logp.device) / temperature, dim=-1)
        per_token = (logp.exp() * (logp - logq)).sum(-1).double().clamp(min=0.0)  # ≥ 0 up to rounding
        mask = batch.completion_mask[rows].to(logp.device)
        sums.append(torch.where(mask, per_token, torch.zeros_like(per_token)).sum(-1).cpu())
    return torch.cat(sums) if sums else torch.zeros(0, dtype=torch.float64)


def _per_prompt(values: Sequence[float], samples: int) -> list[float]:
    """Means of consecutive groups of ``samples`` values: one per prompt."""
    return [statistics.fmean(values[i : i + samples]) for i in range(0, len(values), samples)]


def _sampled_kls(
    model: PreTrainedModel, reference: PreTrainedModel, batches: list[_Generated], sampling: Sampling
) -> list[float]:
    """Each sampled answer's summed exact next-token KL (:func:`_sequence_kls`), in the answers' order."""
    return [float(kl) for batch in batches for kl in _sequence_kls(model, reference, batch, sampling.temperature)]


def _sampled_kl(
    model: PreTrainedModel, reference: PreTrainedModel, batches: list[_Generated], sampling: Sampling
) -> Estimate:
    return Estimate.over_prompts(_per_prompt(_sampled_kls(model, reference, batches, sampling), sampling.samples))


def _sampled_judgements(judge: Judge, prompts: Sequence[str], completions: list[str], samples: int) -> list[Judgement]:
    """The judge's verdicts on `samples` consecutive answers per prompt."""
    return judge.judge([p for p in prompts for _ in range(samples)], completions)


def _refusal_estimate(judgements: Sequence[Judgement], samples: int) -> Estimate:
    return Estimate.over_prompts(_per_prompt([float(j.refused) for j in judgements], samples))


def _refusal_probability(judge: Judge, prompts: Sequence[str], completions: list[str], samples: int) -> Estimate:
    return _refusal_estimate(_sampled_judgements(judge, prompts, completions, samples), samples)


def _result(judge: Judge, prompts: Sequence[str], completions: list[str]) -> EvalResult:
    return _summary(judge, judge.judge(list(prompts), completions), completions)


def _summary(judge: Judge, judgements: Sequence[Judgement], completions: list[str]) -> EvalResult:
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


def sampled_kl_to_reference(
    model: PreTrainedModel,
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    sampling: Sampling,
    batch_size: int = 8,
) -> Estimate:
    """An unbiased estimate of KL(π_θ ‖ π_ref) per prompt, on completions sampled from ``model`` (π_θ), averaged over
    prompts with its standard error.

    For a prompt x, with completions cut at ``sampling.max_new_tokens`` tokens (or eos), the chain rule gives

        KL(π_θ ‖ π_ref)(x) = E_{y ~ π_θ(·|x)} Σ_t KL_t(y_<t),
        KL_t(y_<t) = Σ_v π_θ(v | x, y_<t) [log π_θ(v | x, y_<t) − log π_ref(v | x, y_<t)],

    so for K samples y⁽ᵏ⁾ ~ π_θ the estimate is (1/K) Σ_k Σ_{t ≤ |y⁽ᵏ⁾|} KL_t(y⁽ᵏ⁾_<t), both models' next-token
    distributions taken at ``sampling.temperature`` (at 1, the policies themselves). It is the expectation, given the
    sampled prefix, of both textbook estimators: the sequence log-ratio Σ_t [log π_θ(y_t|·) − log π_ref(y_t|·)] and
    the per-token k3 = r − 1 − log r (r = π_ref/π_θ at the sampled token). So it is unbiased like them and, by
    Rao–Blackwell, has no more variance than either; it is never negative, exactly 0 for a model against itself, and
    has none of the log-ratio's negative values or k3's heavy tail where π_ref ≫ π_θ on a sampled token. It needs no
    extra forward pass (the full next-token distributions come with the log-probs of the sampled tokens).

    Across prompts: the mean of the per-prompt estimates and its standard error (sd / √n, which counts both the
    prompts' spread and the sampling noise).
    """
    batches = _generate(model, tokenizer, prompts, sampling.max_new_tokens, batch_size, sampling)
    return _sampled_kl(model, reference, batches, sampling)


def refusal_probability(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    judge: Judge,
    sampling: Sampling,
    batch_size: int = 8,
) -> Estimate:
    """The probability that ``model`` refuses under sampling: per prompt, the share of ``sampling.samples`` sampled
    answers ``judge`` counts as refusals; averaged over prompts, with its standard error. Unlike the greedy refusal
    rate it moves smoothly with the weights and sees how deep a refusal is, not only which answer is most likely."""
    batches = _generate(model, tokenizer, prompts, sampling.max_new_tokens, batch_size, sampling)
    return _refusal_probability(judge, prompts, _decode(tokenizer, batches), sampling.samples)


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

    With ``sampling``, also the sampled measures, from ``sampling.samples`` answers per prompt drawn once per set:
    - ``eval/refusal_prob``, ``eval/refusal_prob_normal``: the probability of a refusal under sampling
      (:func:`refusal_probability`) on the harmful and the harmless prompts;
    - ``eval/kl_safety_sampled``, ``eval/kl_normal_sampled``: the unbiased estimate of KL(π_θ ‖ π_ref)
      (:func:`sampled_kl_to_reference`), when a reference is set;
    each with its standard error over prompts as ``<key>_se`` (with two prompts or more).

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
        sampling: Sampling | None = None,
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
        self.sampling = sampling
        self._reference_digest: tuple[int, str] | None = None  # (id of the reference it hashed, its digest)

    def _bound(self, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[str]:
        """``prompts`` (single user turns) within ``max_prompt_length`` tokens after the chat template, counted."""
        if self.max_prompt_length is None or not prompts:
            return list(prompts)
        chats = Dataset.from_dict({"prompt": [[{"role": "user", "content": text}] for text in prompts]})
        bounded = bound_prompts(chats, tokenizer, self.max_prompt_length)
        self.truncated += bounded.truncated
        self.dropped += bounded.dropped
        return [chat[-1]["content"] for chat in bounded.dataset["prompt"]]

    def reference_digest(self) -> str | None:
        """The reference's :func:`~frpo_core.safety.memo.weights_digest` (None without one), hashed once: the
        reference is frozen, and a new one (:class:`SafetyEvalCallback` sets it at the start) is hashed anew."""
        if self.reference is None:
            return None
        if self._reference_digest is None or self._reference_digest[0] != id(self.reference):
            self._reference_digest = (id(self.reference), weights_digest(self.reference))
        return self._reference_digest[1]

    def prompt_record(self) -> dict[str, int | None]:
        """The prompt bound and how many evaluation prompts it cut or dropped (what a run records)."""
        return {"max_prompt_length": self.max_prompt_length, "truncated": self.truncated, "dropped": self.dropped}

    def evaluate(self, model: PreTrainedModel) -> dict[str, float]:
        """The eval/* metrics of ``model`` (see the class docstring)."""
        return self.evaluate_in_full(model).metrics

    def evaluate_in_full(self, model: PreTrainedModel) -> Evaluation:
        """The metrics and every judged answer behind the refusal rates and KLs (greedy, and sampled if set)."""
        metrics: dict[str, float] = {}
        answers: list[JudgedAnswer] = []
        for prompts, suffix, kl_key, prompt_set in (
            (self.harmful_prompts, "", "eval/kl_safety", "harmful"),
            (self.harmless_prompts, "_normal", "eval/kl_normal", "harmless"),
        ):
            if not prompts:
                continue
            batches = _generate(model, self.tokenizer, prompts, self.max_new_tokens, self.batch_size)
            completions = _decode(self.tokenizer, batches)
            judgements = self.judge.judge(list(prompts), completions)
            result = _summary(self.judge, judgements, completions)
            kls = _k3_per_sequence(model, self.reference, batches).tolist() if self.reference is not None else None
            answers += _judged(prompt_set, prompts, completions, judgements, self.judge, kls)
            metrics[f"eval/refusal_rate{suffix}"] = result.refusal_rate
            if not suffix:
                metrics["eval/harmfulness"] = result.harmfulness
                metrics["eval/reward_safety"] = 1.0 - result.harmfulness
            elif self.scorer is not None:
                metrics["eval/reward_normal"] = statistics.fmean(self.scorer.score(list(prompts), completions))
            if kls is not None:
                metrics[kl_key] = statistics.fmean(kls) if kls else float("nan")
            if self.sampling is not None:
                sampled, judged = self._sampled(model, prompts, prompt_set, suffix, kl_key)
                metrics |= sampled
                answers += judged
        if self.strongreject_prompts:
            strongreject_answers = generate_greedy(
                model, self.tokenizer, list(self.strongreject_prompts), self.max_new_tokens, self.batch_size
            )
            metrics["eval/strongreject"] = _result(
                self.strongreject_judge, self.strongreject_prompts, strongreject_answers
            ).harmfulness
        return Evaluation(metrics, answers)

    def _sampled(
        self, model: PreTrainedModel, prompts: Sequence[str], prompt_set: str, suffix: str, kl_key: str
    ) -> tuple[dict[str, float], list[JudgedAnswer]]:
        """The sampled measures of one prompt set, and their answers: one draw, judged and used for the KL."""
        sampling = self.sampling
        batches = _generate(model, self.tokenizer, prompts, sampling.max_new_tokens, self.batch_size, sampling)
        completions = _decode(self.tokenizer, batches)
        judgements = _sampled_judgements(self.judge, prompts, completions, sampling.samples)
        metrics = _refusal_estimate(judgements, sampling.samples).metrics(f"eval/refusal_prob{suffix}")
        kls = None
        if self.reference is not None:
            kls = _sampled_kls(model, self.reference, batches, sampling)
            metrics |= Estimate.over_prompts(_per_prompt(kls, sampling.samples)).metrics(f"{kl_key}_sampled")
        answers = _judged(prompt_set, prompts, completions, judgements, self.judge, kls, sampling.samples)
        return metrics, answers


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
    batch_size: int = 8,
    scorer: Scorer | None = None,
    strongreject: str | None = None,
    n_strongreject: int | None = None,
    strongreject_judge: Judge | None = None,
    harmless: str | None = None,
    max_prompt_length: int | None = None,
    sampling: Sampling | None = None,
) -> SafetyEvaluator:
    """A SafetyEvaluator on fixed subsets of a labelled prompt set (task "safety" / "normal"), drawn once by `seed`.
    Harmless prompts come from ``harmless`` when given (e.g. HarmBench has none), and are skipped if there are none;
    with ``strongreject``, the evaluator also answers a fixed subset of that set (all of it by default). Prompts are
    bounded to ``max_prompt_length`` tokens; ``sampling`` adds the sampled measures (see :class:`SafetyEvaluator`);
    ``batch_size`` prompts go into each generate call."""
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
        batch_size,
        scorer=scorer,
        strongreject_prompts=texts(strongreject, None, n_strongreject) if strongreject else (),
        strongreject_judge=strongreject_judge,
        max_prompt_length=max_prompt_length,
        sampling=sampling,
    )


class SafetyEvalCallback(TrainerCallback):
    """Runs a :class:`SafetyEvaluator` at the start of training (step 0), every ``every`` optimiser steps and at the
    end.

    Metrics go to ``report(step, metrics)`` (e.g. a service writing them to its store), the judged answers behind
    them to ``keep(step, answers)`` (so a rate can be audited), and the metrics into the trainer's log:
    appended to ``state.log_history`` and, once :meth:`attach` has given the callback its trainer, sent to the
    trainer's other callbacks (reporting integrations) through ``on_log``. The callback does not call
    ``trainer.log``, because GRPO-style trainers flush their accumulated training metrics there.

    With no reference on the evaluator, the model at ``on_train_begin`` is frozen and copied as the reference (the
    pre-fine-tuning policy, docs/method.md §6.11); this holds a second copy of the weights. Every process evaluates (so
    sharded models can run their forward passes); only the main process reports and logs.

    With a ``memo`` (single process only: it fingerprints the whole model, :mod:`frpo_core.safety.memo`), the step-0
    evaluation is taken from an earlier evaluation of the same weights, prompts and decoding where the memo has one
    (e.g. every RL run from one warm start, or fine-tuning from an RL run's final model), and the step-0 and final
    evaluations are remembered for later runs.
    """

    def __init__(
        self,
        evaluator: SafetyEvaluator,
        every: int,
        report: ReportFn | None = None,
        keep: KeepFn | None = None,
        memo: EvaluationMemo | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be ≥ 1, got {every}")
        self.evaluator = evaluator
        self.every = every
        self.report = report
        self.keep = keep
        self.memo = memo
        self.trainer: Trainer | None = None
        self._last_step: int | None = None

    def attach(self, trainer: Trainer) -> SafetyEvalCallback:
        """Add this callback to ``trainer`` and route its metrics through the trainer's log integrations."""
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    def _run(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model, end: bool = False
    ) -> None:
        if model is None or state.global_step == self._last_step:
            return
        self._last_step = step = state.global_step
        # the start and the end are what later runs evaluate again: a run from this start, or from this final model
        memo = self.memo if step == 0 or end or step >= state.max_steps else None
        now = fingerprint(self.evaluator, model) if memo is not None else None
        metrics = memo.recall(step, now) if now is not None and step == 0 else None
        if metrics is None:
            evaluation = self.evaluator.evaluate_in_full(model)
            metrics = evaluation.metrics
            if state.is_world_process_zero and self.keep is not None:
                self.keep(step, evaluation.answers)
            if state.is_world_process_zero and now is not None:
                memo.remember(step, now, metrics)
        if state.is_world_process_zero:
            self._log(args, state, control, metrics)

    def _log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics: dict) -> None:
        """This step's metrics into the trainer's log history, its log integrations and ``report``."""
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
        self._run(args, state, control, model, end=True)  # the end, if `every` does not divide the step count
