"""`frpo export sweep | run`: a sweep's jobs and every metric point as CSV or Parquet, read back."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration


def test_a_sweep_exports_its_jobs_and_every_point(runner, seeded_api, tmp_path):
    url, seeded = seeded_api
    frpo = runner(url, seeded.read_key)
    runs, points = tmp_path / "runs.csv", tmp_path / "points.parquet"
    result = frpo("export", "sweep", seeded.sweep_id, "--runs", str(runs), "--points", str(points))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(runs.open()))
    assert len(rows) == 12 and {row["id"] for row in rows} <= set(seeded.rl) | set(seeded.finetune)
    assert {"spec", "tag.method", "tag.seed", "status"} <= set(rows[0])
    finetunes = [row for row in rows if row["id"] in seeded.finetune]
    for row in finetunes:  # the final value of a series is its last logged point, exactly
        refusal = seeded.refusal[row["id"]]
        assert float(row["final.eval/refusal_rate"]) == refusal[max(refusal)]
    table = pq.read_table(points).to_pylist()
    assert set(table[0]) == {"run_id", "key", "step", "value"}
    for run_id, refusal in seeded.refusal.items():
        if run_id in {row["id"] for row in finetunes}:
            got = {p["step"]: p["value"] for p in table if p["run_id"] == run_id and p["key"] == "eval/refusal_rate"}
            assert got == refusal  # full resolution: every step, not a chart's downsample


def test_a_run_exports_its_points(runner, seeded_api, tmp_path):
    url, seeded = seeded_api
    run_id = seeded.finetune_ids()[0]
    out = tmp_path / "run.csv"
    result = runner(url, seeded.read_key)("export", "run", run_id, "--points", str(out))
    assert result.exit_code == 0, result.output
    refusal = {int(r["step"]): float(r["value"]) for r in csv.DictReader(out.open()) if r["key"] == "eval/refusal_rate"}
    assert refusal == seeded.refusal[run_id]
    assert "final.eval/refusal_rate=" in result.stdout


def test_an_unknown_format_is_refused_naming_the_suffixes(runner, seeded_api, tmp_path):
    url, seeded = seeded_api
    result = runner(url, seeded.read_key)("export", "sweep", seeded.sweep_id, "--runs", str(tmp_path / "r.xlsx"))
    assert result.exit_code == 2 and ".csv or .parquet" in result.output


def test_a_runs_samples_export_as_json_lines(runner, seeded_api, tmp_path):
    import json

    url, seeded = seeded_api
    out = tmp_path / "samples.jsonl"
    run_id = seeded.finetune_ids()[0]
    result = runner(url, seeded.read_key)("export", "samples", run_id, "--out", str(out), "--verdict", "answered")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and {r["verdict"] for r in rows} == {"answered"}
    assert {"prompt", "prompt_sha256", "answer", "judge", "judge_version", "step"} <= set(rows[0])
