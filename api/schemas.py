"""Response bodies. Request bodies are the job contract itself (store.specs), so the OpenAPI schema carries it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; everything is stored in UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class _FromRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, relative to the body (e.g. 'grid.seed').")
    message: str
    fix: str = Field(description="What to change.")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: unauthorized, forbidden, not_found, conflict, …")
    message: str
    fields: list[FieldError] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


class Job(_FromRow):
    id: uuid.UUID
    kind: str
    status: str
    name: str | None = None
    spec: dict[str, Any] = Field(description="The full spec, defaults filled in: enough to rerun the job.")
    tags: dict[str, Any]
    progress: float
    eta_seconds: float | None = None
    error: str | None = None
    parent_id: uuid.UUID | None = None
    sweep_id: uuid.UUID | None = None
    owner_key_id: int | None = Field(None, description="The API key that submitted it (`frpo keys list`).")
    attempts: int
    queue: str
    cancel_requested: bool
    created_at: UtcDatetime
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None


class JobPage(BaseModel):
    items: list[Job]
    total: int
    limit: int
    offset: int


class SweepBase(_FromRow):
    id: uuid.UUID
    name: str
    base_spec: dict[str, Any]
    grid: dict[str, Any]
    created_at: UtcDatetime
    owner_key_id: int | None = Field(None, description="The API key that submitted it (`frpo keys list`).")


class SweepOut(SweepBase):
    job_ids: list[uuid.UUID]
    jobs: list[Job]


class SweepSummary(SweepBase):
    """A sweep without its jobs: what a list (the dashboard's sweep picker) needs."""

    job_count: int


class SweepPage(BaseModel):
    items: list[SweepSummary]
    total: int
    limit: int
    offset: int


class Series(BaseModel):
    steps: list[int]
    values: list[float | None] = Field(description="null where the value was NaN or infinite.")
    total_points: int = Field(description="Points stored; more than len(steps) when downsampled.")


class Metrics(BaseModel):
    run_id: uuid.UUID
    series: dict[str, Series]


class MetricKeys(BaseModel):
    run_id: uuid.UUID
    keys: list[str]


class EventOut(_FromRow):
    id: int
    time: UtcDatetime
    level: str
    message: str
    data: dict[str, Any]


class EventPage(BaseModel):
    run_id: uuid.UUID
    items: list[EventOut]
    next_after_id: int = Field(description="Pass as after_id to get only newer events.")


class ArtifactOut(_FromRow):
    id: int
    kind: str
    path: str
    size_bytes: int
    sha256: str
    step: int | None = None
    created_at: UtcDatetime


class ArtifactList(BaseModel):
    run_id: uuid.UUID
    items: list[ArtifactOut]


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


class PresetOut(BaseModel):
    name: str
    kind: str = Field(description="The spec kind it applies to: train, finetune, pipeline or sweep.")
    description: str
    values: dict[str, Any] = Field(description="The field values a spec starts from; the spec's own values win.")
    requires: dict[str, str] = Field(description="Fields (dotted paths) a spec must still give, and what to give.")
    notes: list[str] = Field(description="What the preset keeps from the paper or departs from it.")


class PresetList(BaseModel):
    items: list[PresetOut]


class SampleOut(_FromRow):
    id: int
    step: int
    prompt_set: str = Field(description="harmful or harmless.")
    prompt_id: str = Field(description="Its place in the run's fixed evaluation subset.")
    prompt_sha256: str = Field(description="The same prompt has the same hash in any run or step.")
    prompt: str | None = Field(description="The prompt's text; null where the set's texts are not stored.")
    decoding: str = Field(description="greedy, or sampled (sample_index 0..K-1).")
    sample_index: int
    answer: str
    judge: str
    judge_version: str
    verdict: str | None = Field(description="refused or answered.")
    score: float | None = Field(description="The judge's harmfulness score, 0 (safe) to 1, where it gives one.")
    kl: float | None = Field(description="This answer's log-ratio to the reference model, where measured.")


class SamplePage(BaseModel):
    run_id: uuid.UUID
    items: list[SampleOut]
    next_after_id: int = Field(description="Pass as after_id for the next page; the same id when there is none.")


class SampleSteps(BaseModel):
    run_id: uuid.UUID
    steps: list[int]
