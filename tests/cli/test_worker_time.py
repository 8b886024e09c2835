"""The demo's closing table of worker-seconds by stage and phase."""

from __future__ import annotations

from cli.worker_time import stage_of, time_table, worker_seconds
from store.metrics import TIME_PHASES


def phases(**seconds: float) -> dict[str, float]:
    return {phase: seconds.get(phase, 0.0) for phase in [*TIME_PHASES, "other"]}


def test_a_job_is_counted_from_its_claim_to_its_finish():
    job = {"started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:30.500000+00:00"}
    assert worker_seconds(job) == 90.5
    assert worker_seconds({"started_at": None, "finished_at": None}) == 0.0


def test_the_warm_start_is_its_own_stage_and_the_others_go_by_kind():
    assert stage_of({"id": "w", "kind": "finetune"}, warm_start_id="w") == "warm start"
    assert stage_of({"id": "a", "kind": "finetune"}, warm_start_id="w") == "SFT"
    assert stage_of({"id": "b", "kind": "train"}) == "RL"


def test_each_stage_shows_its_jobs_total_and_mean_seconds_by_phase():
    lines = time_table({"RL": [phases(imports=10, train=30), phases(imports=12, train=34, other=2)]})
    header, row = lines[1].split(), lines[2].split()
    assert header[:4] == ["stage", "jobs", "total", "s"] and header[-1] == "other"
    assert row[:4] == ["RL", "2", "88", "44.0"]
    assert dict(zip(header[6:], row[4:], strict=True))["imports"] == "11.0"
