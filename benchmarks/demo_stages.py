"""What the cuts to a toy pipeline's fixed cost save, side by side, on one CPU thread (as the demo's workers run):

    python -m benchmarks.demo_stages [--warm-start-steps 300] [--repeats 3]

1. the warm start: training it (the `toy-warm-start` preset's SFT, as scripts/build_warm_start.py does; the demo ran
   it alone before its sweep) against loading the shipped checkpoint with its digest checked;
2. batched evaluation: one evaluation of the warm start on the toy presets' evaluation block (toy_safety_heldout, 36
   harmful + 24 harmless prompts, greedy answers of 32 tokens; then with 8 sampled answers of 16 tokens) at
   `eval.batch_size` 8 (the default) and 64 (the toy presets'), interleaved over `--repeats` rounds;
3. evaluations computed once: the fingerprint a step-0 or final evaluation costs, and the evaluations a demo pipeline
   no longer runs (RL's step 0 from the shared start, fine-tuning's step 0 from the RL end: 2 of its 8 at the
   demo's 120 RL steps and 40 fine-tuning steps, evaluated every 60 and every 10).
Prints wall seconds (medians) and the saving per pipeline.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from frpo_core.safety.evaluation import Sampling, frozen_copy
from frpo_core.safety.memo import fingerprint
from frpo_core.tiny import load_tiny_model
from frpo_core.toy.evaluation import toy_safety_evaluator
from frpo_core.toy.warm_start import shipped_warm_start


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def warm_start(steps: int) -> tuple[float, float]:
    """(seconds to train the warm start for `steps` steps in a process of its own, as a job does, seconds to load
    and check the shipped one)."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "build_warm_start.py"
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, str(script), "--output", f"{scratch}/warm", "--max-steps", str(steps)]
        trained = timed(lambda: subprocess.run(command, check=True, capture_output=True))
    shipped = timed(lambda: load_tiny_model(shipped_warm_start()))
    return trained, shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm-start-steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    model, tokenizer = load_tiny_model(shipped_warm_start())
    evaluator = toy_safety_evaluator(tokenizer, reference=frozen_copy(model))
    variants = [(sampled, batch) for sampled in (False, True) for batch in (8, 64)]
    seconds: dict[tuple[bool, int], list[float]] = {variant: [] for variant in variants}
    for _ in range(args.repeats):
        for sampled, batch in variants:
            evaluator.batch_size, evaluator.sampling = batch, Sampling(8, 16) if sampled else None
            seconds[sampled, batch].append(timed(lambda: evaluator.evaluate(model)))
    fingerprinting = statistics.median(timed(lambda: fingerprint(evaluator, model)) for _ in range(args.repeats))
    trained, shipped = warm_start(args.warm_start_steps)

    print(
        f"warm start: trained ({args.warm_start_steps} steps) {trained:.1f} s, shipped (load + sha256) {shipped:.2f} s"
    )
    print("one evaluation of the warm start (36 + 24 prompts), median wall s:")
    for sampled in (False, True):
        small, large = (statistics.median(seconds[sampled, batch]) for batch in (8, 64))
        label = "greedy + 8 sampled × 16 tokens" if sampled else "greedy only"
        print(f"  {label:32s} batch 8: {small:5.2f}   batch 64: {large:5.2f}   ({small / large:.1f}×)")
        print(
            f"    per demo pipeline (8 evaluations): batching saves {8 * (small - large):5.1f} s, the 2 reused save "
            f"{2 * large - 2 * fingerprinting:5.1f} s more"
        )
    print(f"fingerprint of one evaluation (weights + tokenizer + settings): {fingerprinting * 1000:.1f} ms")


if __name__ == "__main__":
    main()
