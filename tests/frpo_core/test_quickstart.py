"""The quickstart demo runs end to end and prints its table."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_quickstart_prints_a_row_per_run(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "frpo_core.quickstart",
            "--steps",
            "6",
            "--lambdas",
            "0.5",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("grpo", "frpo"))]
    assert [row[0] for row in rows] == ["grpo", "frpo"]
    for row in rows:
        reward_start, reward_end, robust_end, seconds = map(float, row[2:])
        assert 0 <= robust_end <= 1 and 0 <= reward_start <= 1 and 0 <= reward_end <= 1 and seconds > 0
