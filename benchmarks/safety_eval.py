"""Cost of the sampled safety measures against the greedy evaluation alone, on the toy presets' evaluation block.

    python -m benchmarks.safety_eval [--samples 8] [--lengths 16 32] [--repeats 2]

One `SafetyEvaluator.evaluate` of the tiny model (frpo_core/tiny.py, built fresh) against a frozen copy of itself on
the toy presets' prompts (toy_safety_heldout: 36 harmful, 24 harmless; greedy answers of 32 tokens, the offline
refusal matcher and the 'answered' scorer), first greedy only, then with `--samples` sampled answers per prompt of each
of `--lengths` tokens (16: toy-safety's RL completion length; 32: toy-benign-sft's greedy length, its default), the
variants interleaved over `--repeats` rounds so machine noise hits them alike. Prints wall and process CPU seconds per
evaluation (CPU time is the steadier figure on a shared machine) and the added share.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from frpo_core.safety.evaluation import Sampling, frozen_copy
from frpo_core.tiny import build_tiny_model, load_tiny_model
from frpo_core.toy.evaluation import toy_safety_evaluator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    model, tokenizer = load_tiny_model(build_tiny_model(tempfile.mkdtemp(prefix="bench-eval-")))
    variants = {"greedy only": None} | {
        f"+ {args.samples} samples × {length} tokens": Sampling(args.samples, length) for length in args.lengths
    }
    evaluator = toy_safety_evaluator(tokenizer, reference=frozen_copy(model))
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, sampling in variants.items():
            evaluator.sampling = sampling
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            evaluator.evaluate(model)
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
            print(f"  ({name}: wall {wall[name][-1]:.2f} s, cpu {cpu[name][-1]:.2f} s)", flush=True)
    base = statistics.median(cpu["greedy only"])
    print(f"one evaluation, 36 + 24 prompts, median of {args.repeats}:")
    for name in variants:
        added = statistics.median(cpu[name]) / base - 1
        print(
            f"  {name:28s} wall {statistics.median(wall[name]):6.2f} s  cpu {statistics.median(cpu[name]):6.2f} s"
            + (f"  (+{added:.0%} cpu)" if name != "greedy only" else "")
        )


if __name__ == "__main__":
    main()
