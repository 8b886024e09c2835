"""Sweeps: a base spec and a grid; one job per point, created together, enqueued after the commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import IdempotencyDep, ReadKey, SessionDep, SettingsDep, SubmitKey
from api.schemas import Job, SweepOut
from store import queries
from store.models import Run, Sweep
from store.specs import SpecError, SweepSpec, check_runnable

router = APIRouter(prefix="/sweeps", tags=["sweeps"])


def sweep_out(sweep: Sweep, runs: Sequence[Run]) -> SweepOut:
    jobs = [Job.model_validate(r) for r in runs]
    return SweepOut(
        id=sweep.id,
        name=sweep.name,
        base_spec=sweep.base_spec,
        grid=sweep.grid,
        created_at=sweep.created_at,
        job_ids=[j.id for j in jobs],
        jobs=jobs,
    )


@router.post("", status_code=202, response_model=SweepOut)
def submit_sweep(
    spec: SweepSpec, session: SessionDep, settings: SettingsDep, _: SubmitKey, idem: IdempotencyDep
) -> JSONResponse:
    """Queue one job per grid point (and the GRPO baselines if include_grpo), all or none."""
    if (replayed := idem.replay()) is not None:
        return replayed
    try:
        check_runnable(spec.base, settings)  # grid axes (λ, β, seed) do not change what check_runnable looks at
    except SpecError as exc:
        raise SpecError(f"base.{exc.field}", exc.message) from exc
    sweep, runs = queries.create_sweep(session, spec)
    return idem.commit(202, sweep_out(sweep, runs).model_dump(mode="json"), enqueue=runs)


@router.get("/{sweep_id}", response_model=SweepOut)
def get_sweep(sweep_id: uuid.UUID, session: SessionDep, _: ReadKey) -> SweepOut:
    return sweep_out(*queries.get_sweep(session, sweep_id))
