"""Which runs a view is about: a sweep's runs, or the runs a user picked, completed along their lineage.

Figure 1 is drawn from fine-tuning runs, the reward trajectories from the RL runs they started from, so a
selection is closed in both directions: RL runs bring their fine-tuning children (`GET /jobs?parent_id=`), and
fine-tuning runs bring their RL parent. A sweep's fine-tuning runs either carry the sweep's id (pipelines launched by
a sweep) or are reachable from its RL runs by parent_id; both are handled. Benchmark scores live in evaluation runs,
children of the RL run (before fine-tuning) and of the fine-tuning run (after): an evaluation run brings the run it
evaluated, and, for the Capability view, RL and fine-tuning runs bring their evaluation runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dashboard.client import concurrently
from frpo_client import ApiError, Client, Json

RL_KINDS = ("train",)
FINETUNE_KINDS = ("finetune",)
EVALUATE_KINDS = ("evaluate",)


def _add(found: dict[str, Json], jobs: Iterable[Json]) -> list[Json]:
    new = []
    for job in jobs:
        if str(job["id"]) not in found:
            found[str(job["id"])] = job
            new.append(job)
    return new


def children(client: Client, parent_ids: Sequence[str]) -> list[Json]:
    """All direct children of the given runs (a run rarely has more than a page of them)."""
    pages = concurrently(lambda pid: client.all_jobs(parent_id=pid, max_items=400), parent_ids)
    return [job for page in pages for job in page]


def jobs_by_id(client: Client, ids: Sequence[str], known: Mapping[str, Json] | None = None) -> list[Json]:
    """The jobs with these ids (from `known`, jobs already fetched, where it has them: one request saved per run);
    an id the API does not know raises a ApiError naming it."""
    known = known or {}

    def one(job_id: str) -> Json:
        try:
            return client.get_job(job_id)
        except ApiError as exc:
            if exc.status in (404, 422):
                raise ApiError(f"no run with id {job_id!r} (from the selection in the URL)", status=404) from exc
            raise

    return concurrently(lambda job_id: known[job_id] if job_id in known else one(job_id), ids)


def _add_children(client: Client, found: dict[str, Json], of: Sequence[str], kinds: Sequence[str]) -> None:
    """Add the children of kinds `kinds` of the runs of kinds `of` in `found`, asking only for runs that have no such
    child there yet (a sweep lists its pipelines' runs itself, so a pipeline sweep costs no request here)."""
    have = {str(j["parent_id"]) for j in found.values() if j.get("parent_id") and j["kind"] in kinds}
    ids = [i for i, j in found.items() if j["kind"] in of and i not in have]
    _add(found, (j for j in children(client, ids) if j["kind"] in kinds))


def _add_parents(
    client: Client, found: dict[str, Json], of: Callable[[Json], bool], known: Mapping[str, Json] | None
) -> None:
    """Add the parents of the runs in `found` that `of` picks."""
    missing = sorted({str(j["parent_id"]) for j in found.values() if of(j) and j.get("parent_id")} - set(found))
    _add(found, jobs_by_id(client, missing, known))


def close_lineage(client: Client, selected: Sequence[Json], known: Mapping[str, Json] | None = None) -> list[Json]:
    """`selected`, plus the runs its evaluation runs evaluated, plus the fine-tuning children of its RL runs, plus
    the RL parents of its fine-tuning runs."""
    found: dict[str, Json] = {}
    _add(found, selected)
    _add_parents(client, found, lambda j: j["kind"] in EVALUATE_KINDS, known)
    _add_children(client, found, RL_KINDS, FINETUNE_KINDS)
    _add_parents(client, found, downstream, known)
    return list(found.values())


def with_evaluations(client: Client, runs: Sequence[Json]) -> list[Json]:
    """`runs`, plus the evaluation runs of its RL and fine-tuning runs (a pipeline's benchmarks before and after
    fine-tuning)."""
    found: dict[str, Json] = {}
    _add(found, runs)
    _add_children(client, found, RL_KINDS + FINETUNE_KINDS, EVALUATE_KINDS)
    return list(found.values())


def collect(
    client: Client,
    *,
    run_ids: Sequence[str] = (),
    sweep_id: str | None = None,
    known: Mapping[str, Json] | None = None,
    evaluations: bool = False,
) -> list[Json]:
    """The runs a view shows: a sweep's (if `sweep_id`) or `run_ids`, closed along their lineage, and with
    `evaluations` their evaluation runs too. `known`: jobs the page has already fetched (by id), used instead of
    asking again."""
    if sweep_id:
        selected = client.get_sweep(sweep_id)["jobs"]
    else:
        selected = jobs_by_id(client, list(dict.fromkeys(run_ids)), known)
    runs = close_lineage(client, selected, known)
    return with_evaluations(client, runs) if evaluations else runs


def downstream(job: Json) -> bool:
    """A fine-tuning run of a finished run (the downstream fine-tuning Figure 1 is about), not an SFT of a base
    model (a warm start, which has no parent)."""
    return job["kind"] in FINETUNE_KINDS and bool(job.get("parent_id"))


def split(runs: Sequence[Json]) -> tuple[list[Json], list[Json]]:
    """(downstream fine-tuning runs, RL runs)."""
    return [r for r in runs if downstream(r)], [r for r in runs if r["kind"] in RL_KINDS]


def parent_of(runs: Sequence[Json]) -> dict[str, Any]:
    """run id → its parent's id."""
    return {str(r["id"]): str(r["parent_id"]) for r in runs if r.get("parent_id")}
