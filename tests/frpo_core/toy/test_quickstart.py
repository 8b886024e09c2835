"""The quickstart: its toy reward, and the demo run end to end printing its table."""

from __future__ import annotations

import subprocess
import sys

import pytest

from frpo_core.toy.quickstart import share_of_e


def test_share_of_e_is_the_share_of_the_letter_e_in_chat_or_text():
    assert share_of_e([[{"role": "assistant", "content": "eee"}], "abcd", ""]) == [1.0, 0.0, 0.0]


@pytest.mark.slow
def test_quickstart_prints_a_row_per_run(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "frpo_core.toy.quickstart",
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
