"""`frpo sweeps submit | list | status | cancel` and `frpo presets`, against the real API."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_a_sweep_from_a_file_with_overrides_is_listed_watched_and_cancelled(runner, empty_api, tmp_path):
    url, seeded = empty_api
    frpo = runner(url, seeded.submit_key)
    spec = tmp_path / "sweep.yaml"
    spec.write_text("name: cli sweep\nbase: {kind: train, preset: toy-safety}\ngrid: {lamb: [0.5]}\n")
    submitted = frpo("sweeps", "submit", str(spec), "--set", "grid.seed=[0, 1]", "--set", "include_grpo=false")
    assert submitted.exit_code == 0, submitted.output
    sweep_id = submitted.stdout.strip()
    [listed] = json.loads(frpo("sweeps", "list", "--json").stdout)
    assert listed["id"] == sweep_id and listed["job_count"] == 2 and listed["name"] == "cli sweep"
    status = frpo("sweeps", "status", sweep_id)
    assert status.exit_code == 0 and "cli sweep: 0/2 ended  2 queued" in status.stdout
    assert frpo("sweeps", "cancel", sweep_id).stdout.strip() == f"cancelled 2 job(s) of sweep {sweep_id}"
    assert json.loads(frpo("sweeps", "status", sweep_id, "--json").stdout)["counts"] == {"cancelled": 2}


def test_status_exits_1_when_a_job_failed(runner, seeded_api):
    url, seeded = seeded_api
    result = runner(url, seeded.read_key)("sweeps", "status", seeded.sweep_id, "--json")
    body = json.loads(result.stdout)
    assert result.exit_code == (1 if body["counts"].get("failed") else 0)
    assert sum(body["counts"].values()) == len(body["jobs"])


def test_presets_are_listed_by_kind_with_what_they_need(runner, seeded_api):
    url, seeded = seeded_api
    frpo = runner(url, seeded.read_key)
    table = frpo("presets", "--kind", "sweep").stdout
    assert "toy-frontier" in table and "needs base.train.dataset" in table and "toy-safety " not in table
    names = {p["name"] for p in json.loads(frpo("presets", "--json").stdout)}
    assert {"toy-safety", "toy-frontier", "toy-benign-sft"} <= names
