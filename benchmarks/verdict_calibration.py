"""Calibration of the frontier verdict (`analysis.verdict.compare`) on synthetic seeds with a known gap.

    python -m benchmarks.verdict_calibration [--experiments 400] [--seed 0]

For 3, 8 and 16 seeds (per GRPO budget and per FRPO setting; per-seed sd 0.10 in robustness, 0.03 in KL): how often
the 95 % interval covers the true gap, how often a true gap of 0 is called "more robust" (promised ≤ 2.5 %), how
often a gap of +0.10 is (the power; target ≥ 0.8 at 16 seeds), and the mean effect detectable at 80 % power. Two
designs: GRPO at three budgets (KL 0.3, 0.5, 0.7) and at seven bracketing FRPO's KL (0.3 to 0.7, 0.05 apart
around it); FRPO at KL 0.5. ± is the simulation error of each rate.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from analysis.calibration import Calibration, Truth, calibrate

DESIGNS = {"3 GRPO budgets": (0.3, 0.5, 0.7), "7 GRPO budgets": (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)}


def rate(result: Calibration, value: float) -> str:
    return f"{value:.3f} ± {result.simulation_error(value):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    header = f"{'design':<16}{'seeds':>6}  {'coverage (95%)':<16}{'false more robust':<19}{'power at +0.10':<16}"
    print(header + "detectable (80%)  seconds")
    for design, budgets in DESIGNS.items():
        for seeds in (3, 8, 16):
            start = time.perf_counter()
            null = calibrate(Truth(0.0, seeds, budgets=budgets), args.experiments, np.random.default_rng(args.seed))
            real = calibrate(
                Truth(0.10, seeds, budgets=budgets), args.experiments, np.random.default_rng(args.seed + 1)
            )
            print(
                f"{design:<16}{seeds:>6}  {rate(null, null.coverage):<16}{rate(null, null.more_robust):<19}"
                f"{rate(real, real.more_robust):<16}{null.mean_detectable:<17.3f}{time.perf_counter() - start:.1f}"
            )


if __name__ == "__main__":
    main()
