"""Train the toy safety warm start again, as the service's `toy-warm-start` preset does, and print its SHA-256.

    python scripts/build_warm_start.py                 # into frpo_core/assets/toy_warm_start (the shipped copy)
    python scripts/build_warm_start.py --output DIR    # elsewhere, e.g. to compare with the shipped bytes

The spec is the preset's own (validated as the API would), turned into an SFT job by the worker's code
(workers.stages.sft_job), from the tiny model built offline, on one CPU thread (as the demo's workers train): on the
same machine it writes the same bytes every time. What it keeps is the model folder a finetune job saves, less the
trainer's pickled arguments. Pin the printed digest in frpo_core/toy/warm_start.py (WARM_START_SHA256).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from frpo_core import build_tiny_model
from frpo_core.jobs.sft import run_sft
from frpo_core.toy.warm_start import WARM_START_DIR, folder_digest
from store.specs import JOB_SPEC
from workers.stages import sft_job

SHIPPED = Path(__file__).resolve().parent.parent / "frpo_core" / "assets" / WARM_START_DIR
LEFT_OUT = {"training_args.bin"}  # the trainer's pickled arguments: not the model, and not reproducible bytes


def build(output: Path, max_steps: int | None = None) -> str:
    """Train the warm start into `output` (replacing what is there) and return its digest; `max_steps` other than
    the preset's only to time a shorter one."""
    torch.set_num_threads(1)
    steps = {"max_steps": max_steps} if max_steps is not None else {}
    spec = JOB_SPEC.validate_python({"kind": "finetune", "preset": "toy-warm-start", **steps})
    with tempfile.TemporaryDirectory(prefix="warm-start-") as scratch:
        tiny = build_tiny_model(Path(scratch) / "tiny")
        final = run_sft(sft_job(spec, str(tiny), Path(scratch) / "sft"))
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        for path in sorted(final.iterdir()):
            if path.is_file() and path.name not in LEFT_OUT:
                shutil.copyfile(path, output / path.name)
    return folder_digest(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=SHIPPED)
    parser.add_argument("--max-steps", type=int, help="instead of the preset's (not for the shipped copy)")
    args = parser.parse_args()
    started = time.perf_counter()
    digest = build(args.output, args.max_steps)
    size = sum(f.stat().st_size for f in args.output.iterdir())
    print(f"{args.output}: {size / 1e6:.2f} MB, trained in {time.perf_counter() - started:.0f} s")
    print(f"sha256 {digest}")


if __name__ == "__main__":
    main()
