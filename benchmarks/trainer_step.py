"""Optimiser-step time of FRPOTrainer with FRPO's loss against the same trainer with GRPO's, everything else equal.

    python -m benchmarks.trainer_step [--rounds 5] [--steps 20] [--batch 64] [--completion-tokens 32] [--checkpointing]

The paper claims FRPO costs no extra computation: the only additions are per-sequence scalars and a (groups ×
members) table. Both runs use the tiny offline model, the same seed, data, batch, generation settings and
`scale_rewards="none"`, and TRL's "grpo" loss (sequence-mean aggregation, like FRPO's). Rounds alternate between
the two methods so machine noise hits both alike; the first step of each round is dropped as warm-up. Target: the
ratio of median step times ≤ 1.02.

With ``--checkpointing`` the two alternated runs are instead FRPO with and without gradient checkpointing (TRL's
default, which CPU jobs turn off: ``frpo_core.jobs.gpu.config_without_gpu``), and the ratio printed is what
checkpointing costs a step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
from pathlib import Path

import torch
from transformers.utils import logging as transformers_logging

from frpo_core.tiny import build_tiny_model
from frpo_core.toy.quickstart import toy_config, toy_trainer

VARIANTS = {"grpo": {"loss_type": "grpo"}, "frpo": {"loss_type": "frpo"}}
CHECKPOINTING = {"checkpointing": {"gradient_checkpointing": True}, "none": {"gradient_checkpointing": False}}


def step_times(
    model_path: Path, workdir: Path, variant: str, settings: dict, args: argparse.Namespace
) -> tuple[list[float], int]:
    """Per-optimiser-step seconds of one short run (first step dropped), and completion tokens per step."""
    config = toy_config(
        workdir / variant,
        **settings,
        learning_rate=1e-3,
        per_device_train_batch_size=args.batch,
        max_completion_length=args.completion_tokens,
        max_steps=args.steps,
    )
    trainer = toy_trainer(model_path, config)
    trainer.train()
    history = [h for h in trainer.state.log_history if "step_time" in h][1:]
    tokens = statistics.mean(h["completions/mean_length"] for h in history) * args.batch
    return [h["step_time"] for h in history], int(tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64, help="completions per step (8 per prompt)")
    parser.add_argument("--completion-tokens", type=int, default=32)
    parser.add_argument("--checkpointing", action="store_true", help="FRPO with against without checkpointing")
    args = parser.parse_args()
    variants = CHECKPOINTING if args.checkpointing else VARIANTS
    transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6", category=FutureWarning)

    times: dict[str, list[float]] = {name: [] for name in variants}
    tokens: dict[str, list[int]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        model_path = build_tiny_model(Path(tmp) / "tiny")
        for round_index in range(args.rounds):
            order = list(variants) if round_index % 2 == 0 else list(reversed(variants))
            for name in order:
                seconds, completion_tokens = step_times(model_path, Path(tmp), name, variants[name], args)
                times[name] += seconds
                tokens[name].append(completion_tokens)

    print(
        f"FRPOTrainer step on the tiny model (CPU, torch {torch.__version__}, {torch.get_num_threads()} threads): "
        f"{args.batch} completions × ≤{args.completion_tokens} tokens per step, {args.rounds} alternating rounds "
        f"of {args.steps} steps"
    )
    print(f"{'run':<14}{'median s/step':>15}{'p10':>8}{'p90':>8}{'completion tok/s':>18}")
    for name, values in times.items():
        deciles = statistics.quantiles(values, n=10)
        median = statistics.median(values)
        rate = statistics.mean(tokens[name]) / median
        print(f"{name:<14}{median:>15.4f}{deciles[0]:>8.4f}{deciles[-1]:>8.4f}{rate:>18.0f}")
    first, second = (statistics.median(values) for values in times.values())
    if args.checkpointing:
        print(f"step time with / without gradient checkpointing = {first / second:.3f}")
    else:
        print(f"FRPO / GRPO step time = {second / first:.3f} (target ≤ 1.02)")


if __name__ == "__main__":
    main()
