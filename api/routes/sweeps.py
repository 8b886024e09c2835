"""Sweeps: a base spec and a grid; one job per point, created together, enqueued after the commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import IdempotencyDep, ReadKey, SessionDep, SettingsDep, SubmitKey
from api.schemas import Job, SweepBase, SweepOut, SweepPage, SweepSummary
from store import queries
from store.models import Run, Sweep
from store.specs import SpecError, SweepSpec, check_runnable

router = APIRouter(prefix="/sweeps", tags=["sweeps"])


def sweep_out(sweep: Sweep, runs: Sequence[Run]) -> SweepOut:
    jobs = [Job.model_validate(r) for r in runs]
    return SweepOut(**SweepBase.model_validate(sweep).model_dump(), job_ids=[j.id for j in jobs], jobs=jobs)


@router.post("", status_code=202, response_model=SweepOut)
def submit_sweep(
    spec: SweepSpec, session: SessionDep, settings: SettingsDep, key: SubmitKey, idem: IdempotencyDep
) -> JSONResponse:
    """Queue one job or pipeline per grid point (and the GRPO baselines if include_grpo), all or none."""
    if (replayed := idem.replay()) is not None:
        return replayed
    try:
        check_runnable(spec.base, settings)  # grid axes (λ, β, seed) do not change what check_runnable looks at
    except SpecError as exc:
        raise SpecError(f"base.{exc.field}", exc.message) from exc
    sweep, first_stages = queries.create_sweep(session, spec, submitter=key)
    body = sweep_out(*queries.get_sweep(session, sweep.id)).model_dump(mode="json")
    return idem.commit(202, body, enqueue=first_stages)  # later pipeline stages start when their parent succeeds


@router.get("", response_model=SweepPage)
def list_sweeps(
    session: SessionDep,
    key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SweepPage:
    """Newest first, each with its number of jobs (`GET /sweeps/{id}` has the jobs themselves)."""
    rows, total = queries.list_sweeps(session, owner=queries.owner_scope(key), limit=limit, offset=offset)
    items = [SweepSummary(**SweepBase.model_validate(sweep).model_dump(), job_count=count) for sweep, count in rows]
    return SweepPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{sweep_id}", response_model=SweepOut)
def get_sweep(sweep_id: uuid.UUID, session: SessionDep, key: ReadKey) -> SweepOut:
    return sweep_out(*queries.get_sweep(session, sweep_id, queries.owner_scope(key)))
