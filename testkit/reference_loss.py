"""A straightforward, loop-per-group FRPO loss written from the formula in docs/method.md §2.2.

Linear space, no tricks: the vectorised `frpo_core.loss` must agree with it in float64. The loss-cost benchmark times
it as the per-group-loop alternative.
"""

from __future__ import annotations

import torch


def reference_frpo_loss(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    lamb: float,
    jackknife: bool = True,
    baseline: bool = True,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    delta: float | None = None,
    ref_per_token_logps: torch.Tensor | None = None,
    beta: float = 0.0,
    scale: str = "authors",
    push_down: torch.Tensor | None = None,
) -> torch.Tensor:
    """The authors' objective, one prompt group at a time. `push_down` (B,) bool selects max(ρ, clip ρ) rows."""
    old = per_token_logps.detach() if old_per_token_logps is None else old_per_token_logps
    group_terms = []
    for gid in torch.unique(group_ids).tolist():
        rows = (group_ids == gid).nonzero().flatten().tolist()
        n = len(rows)
        a = []
        for i in rows:
            m = completion_mask[i].bool()
            rho = torch.exp(per_token_logps[i][m] - old[i][m])
            unclipped = rho if delta is None else torch.clamp(rho, max=delta)
            clipped = torch.clamp(rho, 1 - epsilon_low, 1 + epsilon_high)
            if push_down is not None and bool(push_down[i]):
                c = torch.maximum(unclipped, clipped)
            else:
                c = torch.minimum(unclipped, clipped)
            a.append(c.mean())
        a = torch.stack(a)
        u = torch.exp(-advantages[rows] / lamb) * a
        total = u.sum()
        term = torch.log(total / n)
        if jackknife:
            leave_one_out = torch.stack([torch.log((total - u[k]) / (n - 1)) for k in range(n)])
            term = n * term - (n - 1) * leave_one_out.mean()
        if baseline:
            term = term - a.mean()
        group_terms.append(term)
    s = max(lamb, 1.0) if scale == "authors" else lamb
    loss = s * torch.stack(group_terms).mean()
    if beta:
        diff = ref_per_token_logps - per_token_logps
        k3 = torch.exp(diff) - diff - 1
        mask = completion_mask.to(k3.dtype)
        loss = loss + beta * ((k3 * mask).sum(1) / mask.sum(1)).mean()
    return loss


def reference_effective_advantages(
    advantages: torch.Tensor, group_ids: torch.Tensor, *, lamb: float, jackknife: bool, baseline: bool, scale: str
) -> torch.Tensor:
    """Ã by autograd: at ρ = 1 the loss gradient in a_i is −Ã_i / (G·n_g); read Ã off that gradient."""
    a = torch.ones_like(advantages, requires_grad=True)
    # One token per sequence whose log-prob is log a: the token mean of ρ is then a itself.
    logps = torch.log(a).unsqueeze(1)
    loss = reference_frpo_loss(
        logps,
        torch.zeros_like(logps),
        advantages,
        torch.ones_like(logps),
        group_ids,
        lamb=lamb,
        jackknife=jackknife,
        baseline=baseline,
        scale=scale,
        epsilon_low=1.0,
        epsilon_high=1e9,
    )
    (grad,) = torch.autograd.grad(loss, a)
    _, inverse, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    return -grad * counts.numel() * counts[inverse].to(grad.dtype)
