"""Jobs: submit a training spec, list, inspect, cancel, retry. A job is its run: the same id serves /runs/{id}/…"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from api.deps import IdempotencyDep, ReadKey, SessionDep, SettingsDep, SubmitKey
from api.schemas import Job, JobPage
from store import queries
from store.models import Run, RunKind, RunStatus
from store.specs import JobSpec, PipelineSpec, check_runnable

router = APIRouter(prefix="/jobs", tags=["jobs"])


def job_body(run: Run) -> dict[str, Any]:
    return Job.model_validate(run).model_dump(mode="json")


@router.post("", status_code=202, response_model=Job)
def submit_job(
    spec: Annotated[JobSpec, Body()], session: SessionDep, settings: SettingsDep, key: SubmitKey, idem: IdempotencyDep
) -> JSONResponse:
    """Queue a job: `train` (GRPO or FRPO), `finetune` (SFT of a finished run), `evaluate` (of a finished run) or
    `pipeline` (train → finetune → evaluate; the answer is its first stage, the others follow via parent_id).
    `{"kind": "train", "method": "frpo"}` is the smallest valid body. The job belongs to the submitting key."""
    if (replayed := idem.replay()) is not None:
        return replayed
    check_runnable(spec, settings)  # SpecError -> 422 naming the field
    if isinstance(spec, PipelineSpec):  # answered with its first stage; the others have it as (grand)parent
        run = queries.create_pipeline(session, spec, submitter=key)[0]
    else:  # likewise, for the run a finetune/evaluate starts from (one this key may see)
        parent = queries.check_lineage(session, spec, owner=queries.owner_scope(key))
        run = queries.create_run(session, spec, parent=parent, owner_key_id=key.id)
    return idem.commit(202, job_body(run), enqueue=[run])  # enqueued only after the commit


@router.get("", response_model=JobPage)
def list_jobs(
    session: SessionDep,
    key: ReadKey,
    status: RunStatus | None = None,
    kind: RunKind | None = None,
    method: str | None = Query(None, description="grpo or frpo (the job's method tag)."),
    sweep_id: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobPage:
    """Newest first; a submit key's own jobs only."""
    page = queries.list_runs(
        session,
        status=status,
        kind=kind,
        method=method,
        sweep_id=sweep_id,
        parent_id=parent_id,
        owner=queries.owner_scope(key),
        limit=limit,
        offset=offset,
    )
    return JobPage(items=[Job.model_validate(r) for r in page.items], total=page.total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=Job)
def get_job(job_id: uuid.UUID, session: SessionDep, key: ReadKey) -> Job:
    return Job.model_validate(queries.get_run(session, job_id, queries.owner_scope(key)))


@router.post("/{job_id}/cancel", response_model=Job, responses={202: {"model": Job}})
def cancel_job(job_id: uuid.UUID, session: SessionDep, key: SubmitKey, idem: IdempotencyDep) -> JSONResponse:
    """Queued: cancelled now (200). Running: the worker is asked to stop it (202, still running). Finished: 409.
    Another key's job: 404 (admin keys may cancel any)."""
    if (replayed := idem.replay()) is not None:
        return replayed
    run = queries.cancel_run(session, job_id, queries.owner_scope(key))
    return idem.commit(200 if run.status == RunStatus.cancelled else 202, job_body(run))


@router.post("/{job_id}/retry", status_code=202, response_model=Job)
def retry_job(job_id: uuid.UUID, session: SessionDep, key: SubmitKey, idem: IdempotencyDep) -> JSONResponse:
    """A new job with the same spec and owner (tagged retry_of); only for failed or cancelled jobs. Another key's
    job: 404 (admin keys may retry any)."""
    if (replayed := idem.replay()) is not None:
        return replayed
    run = queries.retry_run(session, job_id, queries.owner_scope(key))
    return idem.commit(202, job_body(run), enqueue=[run])
