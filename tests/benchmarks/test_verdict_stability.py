"""benchmarks/verdict_stability.py in its small version: three real (tiny) demo runs through the embedded service,
with the seeds and the kernel path each was meant to use, and their verdicts compared setting by setting. At this
scale (two seeds, a few steps) the intervals are too wide or missing for agreement to mean anything, so the test
checks that the comparison is made from runs that differ only where they should; agreement is the full run's to show
(docs/results.md)."""

from __future__ import annotations

import json

import pytest

from benchmarks.verdict_stability import RESEED, main

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

SMALL = ["--lamb", "0.5", "--rl-steps", "4", "--grpo-steps", "2", "--grpo-steps", "6", "--finetune-steps", "3"]


def test_the_small_stability_check_compares_reseeded_and_default_kernel_runs_of_one_design(tmp_path):
    code = main(["--seeds", "2", "--out", str(tmp_path), "--", *SMALL, "--warm-start-steps", "20"])
    summary = json.loads((tmp_path / "stability.json").read_text())
    assert code == (0 if summary["agree"] else 1)
    runs = summary["runs"]
    seeds = {name: sorted({p["seed"] for p in run["pipelines"]}) for name, run in runs.items()}
    assert seeds == {"A": [0, 1], "B": [RESEED, RESEED + 1], "C": [0, 1]}
    assert runs["C"]["run"]["cpu_capability"] == "DEFAULT"
    assert runs["A"]["scale"] == {**runs["B"]["scale"], "first_seed": 0}
    for pair in summary["pairs"].values():
        assert [row["setting"] for row in pair] == ["FRPO λ=0.5"]
