"""frpo_core.loss against the per-group reference, GRPO's limit, and the numerics the issue asks for."""

from __future__ import annotations

import itertools

import pytest
import torch

from frpo_core.loss import effective_advantages, frpo_loss, frpo_loss_terms, robust_reward
from testkit.reference_loss import reference_effective_advantages, reference_frpo_loss


def make_batch(*, sizes=(4, 3, 5, 2), T=7, dtype=torch.float64, off_policy=True, seed=0, reward_span=2.0):
    """Groups of unequal sizes, ids neither sorted nor contiguous, ragged completion lengths."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.cat([torch.full((n,), 10 * k + 3, dtype=torch.long) for k, n in enumerate(sizes)])
    perm = torch.randperm(ids.numel(), generator=g)
    ids = ids[perm]
    B = ids.numel()
    rewards = reward_span * torch.rand(B, generator=g, dtype=dtype)
    advantages = rewards.clone()
    for gid in ids.unique():
        advantages[ids == gid] -= rewards[ids == gid].mean()
    logps = (-2.0 * torch.rand(B, T, generator=g, dtype=dtype)).requires_grad_()
    old = (logps.detach() + 0.4 * torch.randn(B, T, generator=g, dtype=dtype)) if off_policy else None
    ref = logps.detach() + 0.3 * torch.randn(B, T, generator=g, dtype=dtype)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).long()
    return (
        dict(
            per_token_logps=logps, old_per_token_logps=old, advantages=advantages, completion_mask=mask, group_ids=ids
        ),
        ref,
        rewards,
    )


GRID = list(itertools.product([0.1, 0.5, 1.0, 3.0], [True, False], [True, False], ["authors", "lambda"], [True, False]))


@pytest.mark.parametrize("lamb,jackknife,baseline,scale,off_policy", GRID)
def test_matches_reference_values_and_gradients(lamb, jackknife, baseline, scale, off_policy):
    batch, ref, _ = make_batch(off_policy=off_policy)
    kwargs = dict(lamb=lamb, jackknife=jackknife, baseline=baseline, scale=scale, ref_per_token_logps=ref, beta=0.05)
    ours = frpo_loss(**batch, **kwargs)
    (grad_ours,) = torch.autograd.grad(ours, batch["per_token_logps"])
    theirs = reference_frpo_loss(**batch, **kwargs)
    (grad_theirs,) = torch.autograd.grad(theirs, batch["per_token_logps"])
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("delta", [None, 1.5])
@pytest.mark.parametrize("jackknife", [True, False])
def test_sign_aware_clipping_matches_reference(delta, jackknife):
    batch, _, _ = make_batch(off_policy=True, seed=3)
    kwargs = dict(lamb=0.5, jackknife=jackknife, baseline=True, scale="authors", delta=delta)
    out = frpo_loss_terms(**batch, clip="sign_aware", **kwargs)
    push_down = out.effective_advantages < 0
    assert push_down.any() and (~push_down).any()
    theirs = reference_frpo_loss(**batch, push_down=push_down, **kwargs)
    torch.testing.assert_close(out.loss, theirs, rtol=1e-10, atol=1e-12)
    grads = [torch.autograd.grad(x, batch["per_token_logps"])[0] for x in (out.loss, theirs)]
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-12)
    # Off-policy, the two clipping rules differ; on-policy they coincide.
    authors = frpo_loss(**batch, clip="authors", **kwargs)
    assert not torch.isclose(authors, out.loss)
    on_policy = dict(batch, old_per_token_logps=None)
    torch.testing.assert_close(
        frpo_loss(**on_policy, clip="authors", **kwargs), frpo_loss(**on_policy, clip="sign_aware", **kwargs)
    )


def test_delta_caps_the_unclipped_ratio():
    batch, _, _ = make_batch(off_policy=True, seed=4)
    for delta in (1.3, 2.0):
        ours = frpo_loss(**batch, lamb=1.0, delta=delta, clip="sign_aware")
        push_down = effective_advantages(batch["advantages"], batch["group_ids"], lamb=1.0) < 0
        theirs = reference_frpo_loss(**batch, lamb=1.0, delta=delta, push_down=push_down)
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_large_lambda_recovers_grpo_gradient():
    """λ → ∞ without jackknife: FRPO's gradient is GRPO's with raw centred advantages (docs/method.md §6.5)."""
    sizes = (8, 8, 8, 8)
    batch, _, _ = make_batch(sizes=sizes, off_policy=False, seed=1)
    loss = frpo_loss(**batch, lamb=1e4, jackknife=False, baseline=True, scale="lambda")
    (grad_frpo,) = torch.autograd.grad(loss, batch["per_token_logps"])
    # GRPO (TRL loss_type="grpo", scale_rewards=False): −mean_i token-mean_t ρ_it·A_i.
    logps, mask = batch["per_token_logps"], batch["completion_mask"].double()
    rho = torch.exp(logps - logps.detach())
    grpo = -(((rho * mask).sum(1) / mask.sum(1)) * batch["advantages"]).mean()
    (grad_grpo,) = torch.autograd.grad(grpo, logps)
    torch.testing.assert_close(grad_frpo, grad_grpo, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("lamb", [0.05, 0.5, 5.0])
@pytest.mark.parametrize("jackknife", [True, False])
@pytest.mark.parametrize("baseline", [True, False])
def test_effective_advantages_match_autograd_and_sum_to_zero(lamb, jackknife, baseline):
    batch, _, _ = make_batch(seed=2)
    adv, ids = batch["advantages"], batch["group_ids"]
    ours = effective_advantages(adv, ids, lamb=lamb, jackknife=jackknife, baseline=baseline, scale="authors")
    theirs = reference_effective_advantages(
        adv, ids, lamb=lamb, jackknife=jackknife, baseline=baseline, scale="authors"
    )
    # The linear-space reference cancels in S − u_k at small λ; 1e-6 is its precision, not ours.
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    if baseline:
        for gid in ids.unique():
            assert abs(float(ours[ids == gid].sum())) < 1e-9
    # And the loss gradient at ρ = 1 is GRPO's surrogate with these advantages, weighted per group.
    on_policy = dict(batch, old_per_token_logps=None)
    loss = frpo_loss(**on_policy, lamb=lamb, jackknife=jackknife, baseline=baseline)
    (grad,) = torch.autograd.grad(loss, on_policy["per_token_logps"])
    logps, mask = on_policy["per_token_logps"], on_policy["completion_mask"].double()
    _, inverse, counts = torch.unique(ids, return_inverse=True, return_counts=True)
    weight = 1.0 / (counts.numel() * counts[inverse].double())
    a = (torch.exp(logps - logps.detach()) * mask).sum(1) / mask.sum(1)
    (grad_surrogate,) = torch.autograd.grad(-(weight * ours * a).sum(), logps)
    torch.testing.assert_close(grad, grad_surrogate, rtol=1e-9, atol=1e-12)


def test_small_lambda_concentrates_on_the_worst_sample():
    adv = torch.tensor([1.0, 0.5, -1.5, 0.0], dtype=torch.float64)
    ids = torch.zeros(4, dtype=torch.long)
    effective = effective_advantages(adv, ids, lamb=0.01, jackknife=False, scale="authors")
    torch.testing.assert_close(effective, torch.tensor([1.0, 1.0, -3.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("jackknife", [True, False])
@pytest.mark.parametrize("clip", ["authors", "sign_aware"])
def test_float32_is_finite_at_tiny_lambda_and_wide_rewards(jackknife, clip):
    """λ = 0.01 with rewards spanning 10 units: exp(−A/λ) alone would be exp(±1000)."""
    batch64, ref, _ = make_batch(sizes=(8, 8, 8), reward_span=10.0, seed=5)
    kwargs = dict(lamb=0.01, jackknife=jackknife, clip=clip, ref_per_token_logps=ref, beta=0.01)
    batch32 = {
        k: (
            v.detach().float().requires_grad_(k == "per_token_logps")
            if torch.is_tensor(v) and v.is_floating_point()
            else v
        )
        for k, v in batch64.items()
    }
    out32 = frpo_loss_terms(**batch32, **{**kwargs, "ref_per_token_logps": ref.float()})
    (grad32,) = torch.autograd.grad(out32.loss, batch32["per_token_logps"])
    assert out32.loss.dtype == torch.float32
    assert torch.isfinite(out32.loss) and torch.isfinite(grad32).all()
    assert torch.isfinite(out32.effective_advantages).all()
    out64 = frpo_loss_terms(**batch64, **kwargs)
    (grad64,) = torch.autograd.grad(out64.loss, batch64["per_token_logps"])
    torch.testing.assert_close(out32.loss.double(), out64.loss, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(grad32.double(), grad64, rtol=1e-3, atol=1e-5)


def test_bfloat16_inputs_compute_in_float32():
    batch, _, _ = make_batch(off_policy=False)
    logps = batch["per_token_logps"].detach().bfloat16().requires_grad_()
    loss = frpo_loss(**dict(batch, per_token_logps=logps), lamb=0.5)
    assert loss.dtype == torch.float32
    loss.backward()
    assert logps.grad is not None and torch.isfinite(logps.grad.float()).all()


def test_permutation_and_relabelling_invariance():
    batch, ref, _ = make_batch(seed=6)
    loss = frpo_loss(**batch, lamb=0.3, ref_per_token_logps=ref, beta=0.1)
    (grad,) = torch.autograd.grad(loss, batch["per_token_logps"])
    perm = torch.randperm(batch["advantages"].numel(), generator=torch.Generator().manual_seed(9))
    logps = batch["per_token_logps"].detach()[perm].requires_grad_()
    permuted = {k: (v[perm] if torch.is_tensor(v) else v) for k, v in batch.items()}
    permuted["per_token_logps"] = logps
    permuted["group_ids"] = 1000 - 7 * permuted["group_ids"]  # any other labels for the same partition
    loss_p = frpo_loss(**permuted, lamb=0.3, ref_per_token_logps=ref[perm], beta=0.1)
    (grad_p,) = torch.autograd.grad(loss_p, logps)
    torch.testing.assert_close(loss_p, loss)
    torch.testing.assert_close(grad_p, grad[perm])


def test_groups_come_from_ids_not_positions():
    """Two groups interleaved must not be read as contiguous blocks."""
    batch, _, _ = make_batch(sizes=(4, 4), off_policy=False, seed=7)
    interleaved = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    blocks = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    a = frpo_loss(**dict(batch, group_ids=interleaved), lamb=0.5)
    b = frpo_loss(**dict(batch, group_ids=blocks), lamb=0.5)
    torch.testing.assert_close(a, reference_frpo_loss(**dict(batch, group_ids=interleaved), lamb=0.5))
    assert not torch.isclose(a, b)


def test_importance_sampling_ratio_of_one_changes_nothing():
    batch, _, _ = make_batch(seed=8)
    B, T = batch["per_token_logps"].shape
    plain = frpo_loss(**batch, lamb=0.5)
    torch.testing.assert_close(frpo_loss(**batch, lamb=0.5, importance_sampling_ratio=torch.ones(B, T)), plain)
    halved = frpo_loss(**batch, lamb=0.5, baseline=False, importance_sampling_ratio=torch.full((B, 1), 0.5))
    # a_i halves everywhere, so every log-mean drops by log 2 (jackknife included: n·c − (n−1)·c = c).
    torch.testing.assert_close(
        halved, frpo_loss(**batch, lamb=0.5, baseline=False) - torch.log(torch.tensor(2.0)), check_dtype=False
    )


def test_kl_bias_correction_weights_the_k3_term_by_rho():
    """TRL's use_bias_correction_kl: same value on-policy, a different (unbiased reverse-KL) gradient."""
    batch, ref, _ = make_batch(off_policy=False, seed=11)
    logps, mask = batch["per_token_logps"], batch["completion_mask"].double()
    plain = frpo_loss(**batch, lamb=0.5, ref_per_token_logps=ref, beta=0.2)
    corrected = frpo_loss(**batch, lamb=0.5, ref_per_token_logps=ref, beta=0.2, kl_bias_correction=True)
    torch.testing.assert_close(plain, corrected)
    policy = frpo_loss(**batch, lamb=0.5)
    k3 = torch.exp(ref - logps) - (ref - logps) - 1
    manual = policy + 0.2 * ((k3 * torch.exp(logps - logps.detach()) * mask).sum(1) / mask.sum(1)).mean()
    grads = [torch.autograd.grad(x, logps)[0] for x in (corrected, manual, plain)]
    torch.testing.assert_close(grads[0], grads[1])
    assert not torch.allclose(grads[0], grads[2])


def test_empty_completion_contributes_no_gradient():
    batch, _, _ = make_batch(off_policy=False, seed=10)
    batch["completion_mask"][0] = 0
    loss = frpo_loss(**batch, lamb=0.5)
    (grad,) = torch.autograd.grad(loss, batch["per_token_logps"])
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert grad[0].abs().sum() == 0


def test_robust_reward_between_min_and_mean():
    rewards = torch.tensor([0.0, 1.0, 1.0, 1.0, 0.2, 0.4, 0.9, 0.7], dtype=torch.float64)
    ids = torch.tensor([5, 5, 5, 5, 2, 2, 2, 2])
    per_group = robust_reward(rewards, ids, lamb=0.5)
    manual = [-0.5 * torch.log(torch.exp(-rewards[ids == g] / 0.5).mean()) for g in (2, 5)]
    torch.testing.assert_close(per_group, torch.stack(manual))
    mins = torch.tensor([0.2, 0.0], dtype=torch.float64)
    means = torch.tensor([0.55, 0.75], dtype=torch.float64)
    assert (per_group > mins).all() and (per_group < means).all()
    torch.testing.assert_close(robust_reward(rewards, ids, lamb=1e-3), mins, atol=2e-3, rtol=0)
    torch.testing.assert_close(robust_reward(rewards, ids, lamb=1e5), means, atol=1e-5, rtol=0)
    assert torch.isfinite(robust_reward(10 * rewards.float(), ids, lamb=0.01)).all()


@pytest.mark.parametrize("bad_lamb", [0.0, -1.0, float("inf"), float("nan")])
def test_rejects_bad_lambda(bad_lamb):
    batch, _, _ = make_batch()
    with pytest.raises(ValueError, match="lamb"):
        frpo_loss(**batch, lamb=bad_lamb)


def test_rejects_singleton_groups_with_jackknife_only():
    batch, _, _ = make_batch(sizes=(3, 1, 2))
    with pytest.raises(ValueError, match="jackknife needs at least 2 completions"):
        frpo_loss(**batch, lamb=1.0, jackknife=True)
    assert torch.isfinite(frpo_loss(**batch, lamb=1.0, jackknife=False))


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("advantages", torch.zeros(3), "advantages must have shape"),
        ("group_ids", torch.zeros(14, 1, dtype=torch.long), "group_ids must have shape"),
        ("completion_mask", torch.ones(14, 3), "completion_mask must have the shape"),
        ("old_per_token_logps", torch.zeros(14, 8), "old_per_token_logps must have the shape"),
        ("group_ids", torch.zeros(14), "integer"),
    ],
)
def test_rejects_mismatched_shapes(field, value, match):
    batch, _, _ = make_batch()
    batch[field] = value
    with pytest.raises(ValueError, match=match):
        frpo_loss(**batch, lamb=1.0)


def test_rejects_bad_options():
    batch, _, _ = make_batch()
    with pytest.raises(ValueError, match="ref_per_token_logps"):
        frpo_loss(**batch, lamb=1.0, beta=0.1)
    with pytest.raises(ValueError, match="scale must be one of"):
        frpo_loss(**batch, lamb=1.0, scale="max")
    with pytest.raises(ValueError, match="delta caps"):
        frpo_loss(**batch, lamb=1.0, delta=1.1)
    with pytest.raises(ValueError, match="clip must be one of"):
        frpo_loss(**batch, lamb=1.0, clip="ppo")
