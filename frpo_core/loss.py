"""The FRPO loss: GRPO's surrogate turned into a worst case over a KL ball of policies.

For a prompt x the inner problem min_{Q: KL(Q||π) ≤ ε} E_Q[r] has the penalised closed form
    J_λ(π) = -λ · log E_{y~π}[exp(-r(y)/λ)]                                    (docs/method.md §1, Lemma 3.1)
whose minimiser tilts π towards its worst completions. With a GRPO group of n completions and centred advantages A
(J is shift invariant, so A can stand in for r), the authors' per-batch loss (docs/method.md §2.2) is

    a_i   = token-mean_t min(ρ_it, clip(ρ_it))                     ρ = π_θ / π_old, the token importance ratio
    u_i   = exp(-A_i/λ) · a_i
    L_g   = log mean_{i∈g} u_i                                     (plain)
          = n·log mean_g u − (n−1)·mean_i log mean_{g∖i} u          (jackknife, App. F: cancels the O(1/n) bias)
    loss  = s · [ mean_g L_g − mean_g mean_{i∈g} a_i ]  +  β · mean_i token-mean_t k3_it
            (baseline term optional; s = max(λ, 1) as the authors' code, or λ as the paper's objective)

Descending this loss at ρ = 1 is GRPO with the advantage replaced by Ã_i = s·(1 − n·w_i), w = softmax_g(−A/λ)
(docs/method.md §2.2): λ → ∞ gives Ã → A − mean_g A, i.e. GRPO without std scaling; small λ concentrates the update on
each group's worst completion. Everything is computed in log space, so float32 stays finite for any λ > 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from frpo_core.distributed import gather_with_local_grad, is_distributed
from frpo_core.groups import GroupLayout

Scale = Literal["authors", "lambda"]
Clip = Literal["authors", "sign_aware"]
SCALES: tuple[str, ...] = ("authors", "lambda")
CLIPS: tuple[str, ...] = ("authors", "sign_aware")


@dataclass(frozen=True)
class FRPOLossOutput:
    """The loss to minimise and the detached diagnostics a trainer logs beside it.

    Attributes:
        loss: scalar to call `.backward()` on.
        robust_term: mean over groups of L_g (before scaling), the log-mean-exp objective the policy descends.
        baseline_term: mean over groups of the mean sequence ratio a_i (0 without the baseline).
        kl: mean per-sequence token-mean k3 KL to the reference, or None when β = 0.
        effective_advantages: (B,) GRPO-equivalent advantages Ã of this rank's samples at ρ = 1.
        clip_ratio_low: fraction of completion tokens whose downward push is clipped (ρ < 1 − ε_low).
        clip_ratio_high: fraction of completion tokens whose upward push is clipped (ρ > 1 + ε_high).
        (The last three are None when computed with diagnostics=False.)
    """

    loss: torch.Tensor
    robust_term: torch.Tensor
    baseline_term: torch.Tensor
    kl: torch.Tensor | None
    effective_advantages: torch.Tensor | None
    clip_ratio_low: torch.Tensor | None
    clip_ratio_high: torch.Tensor | None


def loss_scale(lamb: float, scale: Scale) -> float:
    """The factor in front of the robust term.

    "authors" is max(λ, 1), what the published code multiplies by (docs/method.md §2.4 item 2): for λ < 1 the step does
    not shrink with λ. "lambda" is λ, the paper's objective −λ·log E[exp(−r/λ)] taken literally.
    """
    if scale == "authors":
        return max(lamb, 1.0)
    if scale == "lambda":
        return lamb
    raise ValueError(f"scale must be one of {SCALES}, got {scale!r}.")


def robust_reward(rewards: torch.Tensor, group_ids: torch.Tensor, *, lamb: float) -> torch.Tensor:
    """Per-group worst-case reward in the KL ball, −λ·log mean_i exp(−r_i/λ) (docs/method.md §1).

    It lies between the group's minimum (λ → 0) and its mean (λ → ∞). Returned in sorted group-id order. Logged by
    every training run, GRPO included, so that runs can be compared on the quantity FRPO optimises.
    """
    _check_lambda(lamb)
    if rewards.shape != group_ids.shape or rewards.dim() != 1:
        raise ValueError(
            f"rewards and group_ids must both have shape (B,), got {tuple(rewards.shape)} and {tuple(group_ids.shape)}."
        )
    layout = GroupLayout.from_ids(group_ids)
    return -lamb * layout.log_mean_exp(-rewards.to(_compute_dtype(rewards)) / lamb)


def effective_advantages(
    advantages: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    lamb: float,
    jackknife: bool = True,
    baseline: bool = True,
    scale: Scale = "authors",
) -> torch.Tensor:
    """(B,) the advantages GRPO would need to take FRPO's on-policy (ρ = 1) step, Ã_i = s·(1 − n_g·c_i).

    c_i = ∂L_g/∂log u_i: the softmax weight w_i = softmax_g(−A/λ)_i for the plain log-mean, and
    n·w_i − ((n−1)/n)·Σ_{k≠i} u_i/(S − u_k) with the jackknife. Without the baseline the "1" is absent. The FRPO loss
    gradient equals that of −(1/G)·Σ_g (1/n_g)·Σ_{i∈g} Ã_i·a_i; with equal group sizes that is GRPO's
    −(1/B)·Σ_i Ã_i·a_i. With the baseline, Ã sums to zero in every group.
    """
    layout = GroupLayout.from_ids(group_ids)
    _check_groups(layout, jackknife)
    # float64 on these (B,)-sized tensors: 1 − n·w cancels to float32's precision once λ ≫ |A| (GRPO's limit).
    log_u = -advantages.detach().double() / lamb
    weights = _robust_weights(log_u, layout, jackknife)
    sizes = layout.broadcast(layout.sizes.to(weights.dtype))
    offset = 1.0 if baseline else 0.0
    effective = loss_scale(lamb, scale) * (offset - sizes * weights)
    return effective.to(_compute_dtype(advantages))


@dataclass(frozen=True)
class FRPOLossOptions:
    """FRPO's knobs in one place, checked once when built (the trainer builds one per run).

    Attributes:
        lamb: λ > 0, the KL-ball multiplier in the units of the advantages; small λ = large ball = more conservative.
        jackknife: cancel the O(1/n) downward bias of the log of a sample mean (App. F). Needs groups of n ≥ 2.
        baseline: subtract the zero-expected-gradient offset mean ρ, making Ã zero-sum per group (variance only).
        epsilon_low, epsilon_high: PPO clip range of ρ.
        delta: optional cap on the unclipped ratio, ρ ← min(ρ, δ), as TRL's two-sided clipping; must exceed
            1 + epsilon_high.
        beta: weight of the k3 KL to the reference, a per-rank mean exactly as in GRPO (not scaled by s).
        scale: "authors" = max(λ, 1)·(…), "lambda" = λ·(…); see `loss_scale`.
        clip: "authors" = min(ρ, clip(ρ)) for every sample, which never clips the downward push (docs/method.md §2.4
            item 3); "sign_aware" = PPO's rule by the sign of each sample's effective advantage Ã: min for Ã ≥ 0,
            max(ρ, clip(ρ)) for Ã < 0. Identical when on-policy.
        kl_bias_correction: multiply the per-token KL by ρ, as TRL's `use_bias_correction_kl` (DeepSeek-V3.2) does
            for GRPO, so the two methods' KL terms are the same.
        distributed: gather per-sequence terms over torch.distributed ranks so groups split across ranks are exact;
            gradient flows only through this rank's entries and the loss is multiplied by the world size.
    """

    lamb: float
    jackknife: bool = True
    baseline: bool = True
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    delta: float | None = None
    beta: float = 0.0
    scale: Scale = "authors"
    clip: Clip = "authors"
    kl_bias_correction: bool = False
    distributed: bool = False

    def __post_init__(self) -> None:
        _check_lambda(self.lamb)
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}.")
        if self.clip not in CLIPS:
            raise ValueError(f"clip must be one of {CLIPS}, got {self.clip!r}.")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}.")
        if not 0 <= self.epsilon_low <= 1 or self.epsilon_high < 0:
            raise ValueError(
                f"epsilon_low must be in [0, 1] and epsilon_high >= 0, got {self.epsilon_low}, {self.epsilon_high}."
            )
        if self.delta is not None and self.delta <= 1 + self.epsilon_high:
            raise ValueError(
                f"delta caps the unclipped importance ratio and must be > 1 + epsilon_high "
                f"({1 + self.epsilon_high}), got {self.delta}; leave it None for one-sided clipping."
            )


def frpo_loss(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    options: FRPOLossOptions | None = None,
    ref_per_token_logps: torch.Tensor | None = None,
    importance_sampling_ratio: torch.Tensor | None = None,
    **option_fields: Any,
) -> torch.Tensor:
    """The scalar FRPO loss; see `frpo_loss_terms` for the arguments and the diagnostics."""
    return frpo_loss_terms(
        per_token_logps,
        old_per_token_logps,
        advantages,
        completion_mask,
        group_ids,
        options=options,
        ref_per_token_logps=ref_per_token_logps,
        importance_sampling_ratio=importance_sampling_ratio,
        diagnostics=False,
        **option_fields,
    ).loss


def frpo_loss_terms(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    options: FRPOLossOptions | None = None,
    ref_per_token_logps: torch.Tensor | None = None,
    importance_sampling_ratio: torch.Tensor | None = None,
    diagnostics: bool = True,
    **option_fields: Any,
) -> FRPOLossOutput:
    """FRPO loss and diagnostics for one micro-batch of whole prompt groups.

    Args:
        per_token_logps: (B, T) log π_θ of the completion tokens, with gradient.
        old_per_token_logps: (B, T) log π_old of the sampling policy, or None for on-policy (ρ ≡ 1 with gradient).
        advantages: (B,) centred advantages A = r − mean_g r in raw reward units, which is what λ is measured in.
        completion_mask: (B, T) 1 for completion tokens, 0 for padding.
        group_ids: (B,) integer prompt-group id per completion, in any order.
        options: the loss's knobs (:class:`FRPOLossOptions`); or give its fields as keywords instead
            (``lamb=0.5, jackknife=True, …``), not both.
        ref_per_token_logps: (B, T) reference log-probs, needed when β > 0.
        importance_sampling_ratio: optional (B, T) or (B, 1) sampler-correction weights (vLLM's), applied inside
            the token mean exactly as GRPO applies them to its per-token loss, so both methods see the same data.
        diagnostics: also compute the effective advantages and clip ratios (None otherwise; `frpo_loss` skips them).
    """
    opts = _options(options, option_fields)
    _check_inputs(
        per_token_logps,
        old_per_token_logps,
        advantages,
        completion_mask,
        group_ids,
        ref_per_token_logps,
        importance_sampling_ratio,
        opts.beta,
    )
    dtype = _compute_dtype(per_token_logps)
    logps = per_token_logps.to(dtype)
    old = logps.detach() if old_per_token_logps is None else old_per_token_logps.to(dtype)
    mask = completion_mask.bool()
    groups = _Groups.of(advantages.detach().to(dtype), group_ids, opts)

    local_effective = None
    push_down = torch.zeros(groups.local_batch, dtype=torch.bool, device=advantages.device)
    if diagnostics or opts.clip == "sign_aware":
        local_effective = groups.local(
            effective_advantages(
                groups.advantages,
                groups.ids,
                lamb=opts.lamb,
                jackknife=opts.jackknife,
                baseline=opts.baseline,
                scale=opts.scale,
            )
        )
        if opts.clip == "sign_aware":
            push_down = local_effective < 0

    log_ratio = logps - old
    clipped = _clipped_log_ratio(log_ratio, push_down, opts.epsilon_low, opts.epsilon_high, opts.delta)
    log_a = groups.gather(_sequence_log_mean(clipped, mask, importance_sampling_ratio))
    robust_term = _robust_term(log_a - groups.advantages / opts.lamb, groups.layout, opts.jackknife)
    baseline_term = groups.layout.group_mean(log_a.exp()).mean() if opts.baseline else robust_term.new_zeros(())
    loss = loss_scale(opts.lamb, opts.scale) * groups.world * (robust_term - baseline_term)

    kl = None
    if opts.beta != 0.0:
        kl = _kl_term(logps, ref_per_token_logps.to(dtype), log_ratio, mask, opts.kl_bias_correction)
        loss = loss + opts.beta * kl

    clip_low, clip_high = (
        _clip_ratios(log_ratio, mask, push_down, opts.epsilon_low, opts.epsilon_high) if diagnostics else (None, None)
    )
    return FRPOLossOutput(
        loss=loss,
        robust_term=robust_term.detach(),
        baseline_term=baseline_term.detach(),
        kl=None if kl is None else kl.detach(),
        effective_advantages=local_effective,
        clip_ratio_low=clip_low,
        clip_ratio_high=clip_high,
    )


def _options(options: FRPOLossOptions | None, fields: dict[str, Any]) -> FRPOLossOptions:
    """The options given, or built from their fields given as keywords (the loss functions' keyword form)."""
    if options is not None and fields:
        raise TypeError(f"pass options= or the option fields ({', '.join(sorted(fields))}) as keywords, not both.")
    return options if options is not None else FRPOLossOptions(**fields)


@dataclass(frozen=True)
class _Groups:
    """The prompt groups the loss sums over: this rank's advantages and group ids, or every rank's when the options
    say ``distributed`` and torch.distributed is running (gradient flows only through this rank's entries)."""

    advantages: torch.Tensor  # (N,) detached, N = B, or B × world when gathered
    ids: torch.Tensor
    layout: GroupLayout
    local_batch: int
    world: int  # the loss is multiplied by it, so DDP/ZeRO averaging gives the global gradient
    rank: int

    @classmethod
    def of(cls, advantages: torch.Tensor, group_ids: torch.Tensor, options: FRPOLossOptions) -> _Groups:
        local_batch = advantages.shape[0]
        gather = options.distributed and is_distributed()
        if gather:
            advantages, group_ids = gather_with_local_grad(advantages), gather_with_local_grad(group_ids)
        layout = GroupLayout.from_ids(group_ids)
        _check_groups(layout, options.jackknife)
        world = torch.distributed.get_world_size() if gather else 1
        rank = torch.distributed.get_rank() if gather else 0
        return cls(advantages, group_ids, layout, local_batch, world, rank)

    def gather(self, local: torch.Tensor) -> torch.Tensor:
        """A per-sequence tensor of this rank, as the whole batch (itself when nothing is gathered)."""
        return gather_with_local_grad(local) if self.world > 1 else local

    def local(self, everyone: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a per-sequence tensor of the whole batch."""
        return everyone[self.rank * self.local_batch : (self.rank + 1) * self.local_batch]


def _robust_term(log_u: torch.Tensor, layout: GroupLayout, jackknife: bool) -> torch.Tensor:
    """mean_g L_g: the log-mean of u over each group, or its jackknife n·log U − (n−1)·mean_i log U₋ᵢ."""
    if not jackknife:
        return layout.log_mean_exp(log_u).mean()
    sizes = layout.sizes.to(log_u.dtype)
    log_mean = layout.log_mean_exp(log_u)
    loo_mean = layout.group_mean(layout.leave_one_out_log_mean_exp(log_u))
    return (sizes * log_mean - (sizes - 1) * loo_mean).mean()


def _kl_term(
    logps: torch.Tensor, ref: torch.Tensor, log_ratio: torch.Tensor, mask: torch.Tensor, bias_correction: bool
) -> torch.Tensor:
    """Mean over sequences of the token-mean k3 KL to the reference, exactly as GRPO's (ρ-weighted with the bias
    correction)."""
    per_token_kl = torch.exp(ref - logps) - (ref - logps) - 1
    if bias_correction:
        per_token_kl = per_token_kl * log_ratio.exp()
    return _masked_token_mean(per_token_kl, mask).mean()


def _clipped_log_ratio(
    log_ratio: torch.Tensor, push_down: torch.Tensor, epsilon_low: float, epsilon_high: float, delta: float | None
) -> torch.Tensor:
    """log c_t, where c = min(ρ∧δ, clip ρ), or max(ρ∧δ, clip ρ) on push-down rows.

    Both are a single clamp: min(ρ∧δ, clip ρ) = min(ρ, 1+ε_high, δ) and, as δ > 1+ε_high, max(ρ∧δ, clip ρ) =
    clamp(ρ, 1−ε_low, δ). Clamping commutes with log, so this costs one op per token, like GRPO's clip.
    """
    high = math.log1p(epsilon_high) if delta is None else min(math.log1p(epsilon_high), math.log(delta))
    if not bool(push_down.any()):
        return log_ratio.clamp(max=high)
    low = math.log1p(-epsilon_low) if epsilon_low < 1 else -math.inf
    cap = math.inf if delta is None else math.log(delta)
    down = push_down.unsqueeze(1)
    row_min = torch.where(down, log_ratio.new_tensor(low), log_ratio.new_tensor(-math.inf))
    row_max = torch.where(down, log_ratio.new_tensor(cap), log_ratio.new_tensor(high))
    return torch.clamp(log_ratio, min=row_min, max=row_max)


def _sequence_log_mean(
    log_c: torch.Tensor, mask: torch.Tensor, importance_sampling_ratio: torch.Tensor | None
) -> torch.Tensor:
    """log a_i, a_i = token-mean_t c_it (times the sampler-correction weight).

    The mean itself is taken in linear space, as cheap as GRPO's: on the authors' branch c ≤ 1 + ε_high, so exp
    cannot overflow, and a sequence mean only underflows if every token's ratio is below 1e-38. The group step that
    follows (exp(−A/λ), which does overflow) is all in log space. Empty completions get a = 1: no gradient.
    """
    c = log_c.exp()
    if importance_sampling_ratio is not None:
        c = c * importance_sampling_ratio.to(c.dtype)
    lengths = mask.sum(1)
    a = (c * mask).sum(1) / lengths.clamp(min=1)
    a = torch.where(lengths == 0, torch.ones_like(a), a)
    return a.clamp(min=torch.finfo(a.dtype).tiny).log()


def _clip_ratios(
    log_ratio: torch.Tensor, mask: torch.Tensor, push_down: torch.Tensor, epsilon_low: float, epsilon_high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fractions of completion tokens whose gradient clipping stops: low (push-down rows), high (the others)."""
    with torch.no_grad():
        tokens = mask.sum().clamp(min=1)
        down = push_down.unsqueeze(1) & mask
        up = ~push_down.unsqueeze(1) & mask
        low = ((log_ratio < math.log1p(-epsilon_low)) & down).sum() / tokens if epsilon_low < 1 else tokens * 0
        high = ((log_ratio > math.log1p(epsilon_high)) & up).sum() / tokens
    return low.to(log_ratio.dtype), high.to(log_ratio.dtype)


def _robust_weights(log_u: torch.Tensor, layout: GroupLayout, jackknife: bool) -> torch.Tensor:
    """c_i = ∂L_g/∂log u_i for the plain or jackknifed log-mean (see `effective_advantages`), in log space."""
    log_sum = layout.log_mean_exp(log_u) + layout.sizes.to(log_u.dtype).log()
    share = torch.exp(log_u - layout.broadcast(log_sum))  # u_i / S
    if not jackknife:
        return share
    n = layout.sizes.to(log_u.dtype)
    # log(S − u_k) for every k, as a logsumexp over the others: never a subtraction that could cancel.
    log_sum_without = layout.leave_one_out_log_mean_exp(log_u) + layout.broadcast((n - 1).log())
    # exponent[g, i, k] = log(u_i / (S − u_k)) ≤ 0 for i ≠ k, so the exp cannot overflow; other pairs are masked out.
    exponent = layout.dense(log_u, 0.0).unsqueeze(2) - layout.dense(log_sum_without, 0.0).unsqueeze(1)
    n_max = exponent.shape[1]
    keep = (
        layout.valid.unsqueeze(2) & layout.valid.unsqueeze(1) & ~torch.eye(n_max, dtype=torch.bool, device=log_u.device)
    )
    cross = layout.gather(exponent.masked_fill(~keep, -math.inf).exp().sum(2))
    n_i = layout.broadcast(n)
    return n_i * share - (n_i - 1) / n_i * cross


def _masked_token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum(1) / mask.sum(1).clamp(min=1)


def _compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """fp32 at least: bf16 log-probs are upcast so advantages, weights and the loss stay in fp32
    (docs/method.md §6.3)."""
    return torch.promote_types(tensor.dtype, torch.float32)


def _check_lambda(lamb: float) -> None:
    if not (isinstance(lamb, int | float) and not isinstance(lamb, bool) and math.isfinite(lamb) and lamb > 0):
        raise ValueError(f"lamb (λ) must be a finite number > 0, got {lamb!r}; use GRPO for the λ → ∞ limit.")


def _check_groups(layout: GroupLayout, jackknife: bool) -> None:
    if jackknife and bool((layout.sizes < 2).any()):
        small = int((layout.sizes < 2).sum())
        raise ValueError(
            f"jackknife needs at least 2 completions per prompt group, but {small} group(s) have 1; set "
            "num_generations >= 2, keep whole groups in each micro-batch, or pass jackknife=False."
        )


def _check_inputs(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    group_ids: torch.Tensor,
    ref_per_token_logps: torch.Tensor | None,
    importance_sampling_ratio: torch.Tensor | None,
    beta: float,
) -> None:
    """The tensors' shapes agree, and the reference log-probs are there when the KL term needs them."""
    if per_token_logps.dim() != 2:
        raise ValueError(f"per_token_logps must have shape (B, T), got {tuple(per_token_logps.shape)}.")
    shape = per_token_logps.shape
    for name, tensor in (
        ("old_per_token_logps", old_per_token_logps),
        ("completion_mask", completion_mask),
        ("ref_per_token_logps", ref_per_token_logps),
    ):
        if tensor is not None and tensor.shape != shape:
            raise ValueError(
                f"{name} must have the shape of per_token_logps {tuple(shape)}, got {tuple(tensor.shape)}."
            )
    for name, tensor in (("advantages", advantages), ("group_ids", group_ids)):
        if tensor.shape != shape[:1]:
            raise ValueError(f"{name} must have shape (B,) = ({shape[0]},), got {tuple(tensor.shape)}.")
    if importance_sampling_ratio is not None and importance_sampling_ratio.shape not in (shape, (shape[0], 1)):
        raise ValueError(
            f"importance_sampling_ratio must have shape (B, T) or (B, 1), got {tuple(importance_sampling_ratio.shape)}."
        )
    if beta != 0.0 and ref_per_token_logps is None:
        raise ValueError("beta > 0 needs ref_per_token_logps (the reference model's per-token log-probs).")
