"""FRPOTrainer under two real processes (torchrun, gloo on CPU) with a prompt group split across the ranks."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from frpo_core import build_tiny_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_frpo_trains_with_a_group_split_across_two_ranks(tmp_path):
    model_path = build_tiny_model(tmp_path / "tiny")
    # as a module from the repository root: a script's own folder first on sys.path would shadow the standard
    # library's math with tests/frpo_core/math
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "--module",
        "tests.frpo_core.ddp_train",
        str(model_path),
        str(tmp_path / "out"),
    ]
    log = tmp_path / "torchrun.log"
    # Output to a file and no stdin: torchrun's workers inherit both, and pipes they hold open can stall the test.
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            returncode = process.wait(timeout=240)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)  # the launcher and both workers
    assert returncode == 0, log.read_text()[-4000:]
    outcome = json.loads((tmp_path / "out" / "result.json").read_text())
    assert outcome["world"] == 2
    rank0, rank1 = outcome["checksums"]
    assert rank0 == rank1, "DDP must keep the ranks' parameters identical"
    assert outcome["losses"] and all(math.isfinite(loss) for loss in outcome["losses"])
