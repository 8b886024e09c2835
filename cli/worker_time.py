"""Where a set of jobs' worker-seconds went, by stage and phase: the table `frpo demo` prints at its end.

Each training child records its phases as `time/<phase>` metrics (workers.phases); a job's worker-seconds are its
`finished_at - started_at` (claim to finish), so "other" is what the worker spent outside the child's phases (the
claim, starting or forking the child, the final status). Reads only the API, as any client could.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from frpo_client import Client
from store.metrics import TIME_PHASES, TIME_PREFIX

STAGES = {"train": "RL", "finetune": "SFT", "evaluate": "evaluate"}


def stage_of(job: dict, warm_start_id: str | None = None) -> str:
    return "warm start" if job["id"] == warm_start_id else STAGES.get(job["kind"], job["kind"])


def worker_seconds(job: dict) -> float:
    if not job.get("started_at") or not job.get("finished_at"):
        return 0.0
    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()


def job_phases(client: Client, job: dict) -> dict[str, float]:
    """The job's phases in seconds (a phase it did not record is 0) and `other`, the rest of its worker-seconds."""
    series = client.series(job["id"], [TIME_PREFIX + phase for phase in TIME_PHASES])
    phases = {phase: _last(series.get(TIME_PREFIX + phase, [])) for phase in TIME_PHASES}
    phases["other"] = max(worker_seconds(job) - sum(phases.values()), 0.0)
    return phases


def _last(points: list[tuple[int, float | None]]) -> float:
    return float(points[-1][1] or 0.0) if points else 0.0


def time_table(stages: dict[str, list[dict[str, float]]]) -> list[str]:
    """Per stage: the jobs, their total worker-seconds, then the mean seconds per job of each phase."""
    columns = [*TIME_PHASES, "other"]
    lines = [
        "Where the worker-seconds went (total per stage; then seconds per job, mean by phase):",
        f"{'stage':<11} {'jobs':>4} {'total s':>8} {'mean s':>7}  " + " ".join(f"{c:>10}" for c in columns),
    ]
    for stage, jobs in stages.items():
        total = sum(sum(job.values()) for job in jobs)
        means = [sum(job[c] for job in jobs) / len(jobs) for c in columns]
        lines.append(
            f"{stage:<11} {len(jobs):>4} {total:>8.0f} {total / len(jobs):>7.1f}  "
            + " ".join(f"{m:>10.1f}" for m in means)
        )
    return lines


def demo_time_report(client: Client, jobs: Iterable[dict], warm_start_id: str | None = None) -> list[str]:
    """The table for `jobs` (the warm start among them, if `warm_start_id`), stages in pipeline order."""
    stages: dict[str, list[dict[str, float]]] = {stage: [] for stage in ("warm start", *STAGES.values())}
    for job in jobs:
        stages.setdefault(stage_of(job, warm_start_id), []).append(job_phases(client, job))
    return time_table({stage: phases for stage, phases in stages.items() if phases})
