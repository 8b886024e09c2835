"""A run's outputs: metric series (downsampled server-side for charts), events, artifacts."""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query
from tsdownsample import MinMaxLTTBDownsampler

from api.deps import ReadKey, SessionDep
from api.schemas import (
    ArtifactList,
    ArtifactOut,
    EventOut,
    EventPage,
    MetricKeys,
    Metrics,
    SampleOut,
    SamplePage,
    SampleSteps,
    Series,
)
from store import queries, samples

router = APIRouter(prefix="/runs", tags=["runs"])


def downsample(steps: list[int], values: list[float], max_points: int) -> Series:
    """At most `max_points` points. MinMaxLTTB (tsdownsample, Rust) keeps the shape and extremes of the series;
    the global min and max are added explicitly so a chart never hides a spike. Non-finite values become null
    (and are left out when the series has to be downsampled)."""
    total = len(steps)
    if total > max_points:
        x, y = np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)
        finite = np.flatnonzero(np.isfinite(y))
        x, y = x[finite], y[finite]
        if len(y) > max_points:
            picked = MinMaxLTTBDownsampler().downsample(x, y, n_out=max_points - 2).astype(np.int64)
            picked = np.union1d(picked, [int(np.argmin(y)), int(np.argmax(y))])
            x, y = x[picked], y[picked]
        steps, values = x.tolist(), y.tolist()
    return Series(steps=steps, values=[v if math.isfinite(v) else None for v in values], total_points=total)


@router.get("/{run_id}/metrics", response_model=Metrics)
def get_metrics(
    run_id: uuid.UUID,
    session: SessionDep,
    key: ReadKey,
    keys: Annotated[str | None, Query(description="Comma-separated metric keys; all of the run's if omitted.")] = None,
    max_points: Annotated[int, Query(ge=10, le=100_000, description="Downsample longer series to this.")] = 2000,
) -> Metrics:
    queries.get_run(session, run_id, queries.owner_scope(key))  # 404 before anything else
    wanted = [k.strip() for k in keys.split(",") if k.strip()] if keys else queries.metric_keys(session, run_id)
    series = {key: downsample(*queries.metric_series(session, run_id, key), max_points) for key in wanted}
    return Metrics(run_id=run_id, series=series)


@router.get("/{run_id}/keys", response_model=MetricKeys)
def get_metric_keys(run_id: uuid.UUID, session: SessionDep, key: ReadKey) -> MetricKeys:
    return MetricKeys(run_id=run_id, keys=queries.metric_keys(session, run_id, queries.owner_scope(key)))


@router.get("/{run_id}/events", response_model=EventPage)
def get_events(
    run_id: uuid.UUID,
    session: SessionDep,
    key: ReadKey,
    after_id: Annotated[int, Query(ge=0, description="Only events newer than this id (poll with next_after_id).")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    events = queries.list_events(session, run_id, owner=queries.owner_scope(key), after_id=after_id, limit=limit)
    return EventPage(
        run_id=run_id,
        items=[EventOut.model_validate(e) for e in events],
        next_after_id=events[-1].id if events else after_id,
    )


@router.get("/{run_id}/artifacts", response_model=ArtifactList)
def get_artifacts(run_id: uuid.UUID, session: SessionDep, key: ReadKey) -> ArtifactList:
    items = [ArtifactOut.model_validate(a) for a in queries.list_artifacts(session, run_id, queries.owner_scope(key))]
    return ArtifactList(run_id=run_id, items=items)


@router.get("/{run_id}/samples", response_model=SamplePage)
def get_samples(
    run_id: uuid.UUID,
    session: SessionDep,
    key: ReadKey,
    step: Annotated[int | None, Query(ge=0, le=2**62, description="Only this evaluation step.")] = None,
    prompt_set: Annotated[Literal["harmful", "harmless"] | None, Query(description="Only this prompt set.")] = None,
    verdict: Annotated[Literal["refused", "answered"] | None, Query(description="Only this verdict.")] = None,
    after_id: Annotated[int, Query(ge=0, le=2**62, description="Only samples newer than this id (paging).")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SamplePage:
    """Every judged answer of the run's safety evaluations: prompt (or its hash), answer, judge, verdict, score."""
    found = samples.list_samples(
        session,
        run_id,
        owner=queries.owner_scope(key),
        step=step,
        prompt_set=prompt_set,
        verdict=verdict,
        after_id=after_id,
        limit=limit,
    )
    return SamplePage(
        run_id=run_id,
        items=[SampleOut.model_validate(s) for s in found],
        next_after_id=found[-1].id if found else after_id,
    )


@router.get("/{run_id}/samples/steps", response_model=SampleSteps)
def get_sample_steps(run_id: uuid.UUID, session: SessionDep, key: ReadKey) -> SampleSteps:
    """The evaluation steps at which the run kept its samples."""
    return SampleSteps(run_id=run_id, steps=samples.sample_steps(session, run_id, queries.owner_scope(key)))
