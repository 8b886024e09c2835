"""Cost of the FRPO loss against GRPO's, and against a per-group Python loop.

    python -m benchmarks.loss_cost [--batch 512] [--group-size 8] [--tokens 256] [--repeats 30]

Forward + backward of the loss alone on (B, T) log-probs, fp32 on CPU, all variants timed interleaved in one run so
machine noise hits them alike. Targets (issue 2): FRPO ≤ ~1.5× GRPO; vectorised ≥ 10× faster than the loop, which is
the float64-tested reference of `tests/frpo_core/reference.py`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from frpo_core.loss import frpo_loss
from testkit.reference_loss import reference_frpo_loss


def grpo_loss(per_token_logps, old_per_token_logps, advantages, completion_mask, epsilon=0.2):
    """TRL 1.16's loss_type="grpo": −mean_i token-mean_t min(ρ·A, clip(ρ)·A)."""
    coef_1 = torch.exp(per_token_logps - old_per_token_logps)
    coef_2 = torch.clamp(coef_1, 1 - epsilon, 1 + epsilon)
    adv = advantages.unsqueeze(1)
    per_token = -torch.min(coef_1 * adv, coef_2 * adv)
    return ((per_token * completion_mask).sum(-1) / completion_mask.sum(-1).clamp(min=1.0)).mean()


def make_inputs(batch: int, group_size: int, tokens: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logps = -3 * torch.rand(batch, tokens, generator=g)
    old = logps + 0.1 * torch.randn(batch, tokens, generator=g)
    rewards = torch.rand(batch, generator=g)
    ids = torch.arange(batch) // group_size
    ids = ids[torch.randperm(batch, generator=g)]  # TRL shuffles: groups are not contiguous
    means = torch.zeros(int(ids.max()) + 1).index_add_(0, ids, rewards) / group_size
    lengths = torch.randint(tokens // 4, tokens + 1, (batch,), generator=g)
    mask = (torch.arange(tokens).unsqueeze(0) < lengths.unsqueeze(1)).float()
    return dict(
        per_token_logps=logps,
        old_per_token_logps=old,
        advantages=rewards - means[ids],
        completion_mask=mask,
        group_ids=ids,
    )


def time_fwd_bwd(fn: Callable[[torch.Tensor], torch.Tensor], logps: torch.Tensor) -> float:
    leaf = logps.clone().requires_grad_()
    start = time.perf_counter()
    fn(leaf).backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--loop-repeats", type=int, default=5)
    parser.add_argument("--lamb", type=float, default=0.5)
    args = parser.parse_args()

    x = make_inputs(args.batch, args.group_size, args.tokens)
    rest = {k: v for k, v in x.items() if k != "per_token_logps"}
    grpo_args = {k: v for k, v in rest.items() if k != "group_ids"}
    variants: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "GRPO (TRL grpo)": lambda lp: grpo_loss(lp, **grpo_args),
        "FRPO (jackknife+baseline)": lambda lp: frpo_loss(lp, **rest, lamb=args.lamb),
        "FRPO (plain log-mean)": lambda lp: frpo_loss(lp, **rest, lamb=args.lamb, jackknife=False, baseline=False),
        "FRPO (sign-aware clip)": lambda lp: frpo_loss(lp, **rest, lamb=args.lamb, clip="sign_aware"),
        "FRPO per-group loop": lambda lp: reference_frpo_loss(lp, **rest, lamb=args.lamb),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm-up
        time_fwd_bwd(fn, x["per_token_logps"])
    for i in range(args.repeats):
        for name, fn in variants.items():
            if name == "FRPO per-group loop" and i >= args.loop_repeats:
                continue
            times[name].append(time_fwd_bwd(fn, x["per_token_logps"]))

    median = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"loss forward+backward, B={args.batch} ({args.batch // args.group_size} groups × {args.group_size}), "
        f"T={args.tokens}, fp32, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"{'variant':<28}{'median ms':>12}{'vs GRPO':>10}")
    for name, t in median.items():
        print(f"{name:<28}{1e3 * t:>12.2f}{t / median['GRPO (TRL grpo)']:>9.2f}×")
    frpo = median["FRPO (jackknife+baseline)"]
    print(f"FRPO / GRPO = {frpo / median['GRPO (TRL grpo)']:.2f} (target ≤ 1.5)")
    print(f"per-group loop / vectorised FRPO = {median['FRPO per-group loop'] / frpo:.1f} (target ≥ 10)")


if __name__ == "__main__":
    main()
