"""The database schema (SQLAlchemy 2). One schema for PostgreSQL and SQLite; Alembic versions in migrations/.

A job *is* its run: one row, one id, for /jobs/{id} and /runs/{id}/…. The database, not the broker, is the source of
truth for a job's state: workers claim a run with a conditional UPDATE and hold it by a lease they renew.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, datetime: DateTime(timezone=True)}


class RunKind(enum.StrEnum):
    train = "train"
    finetune = "finetune"
    evaluate = "evaluate"
    pipeline = "pipeline"


class RunStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled)


class Sweep(Base):
    """A base spec and a grid (λ / β / seed); each grid point is one run linked here, owned by the sweep's owner."""

    __tablename__ = "sweeps"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    base_spec: Mapped[dict[str, Any]]
    grid: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    owner_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL", name="fk_sweeps_owner_key_id"), index=True
    )

    runs: Mapped[list[Run]] = relationship(back_populates="sweep")


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[RunKind] = mapped_column(Enum(RunKind, name="run_kind", native_enum=False, length=16))
    status: Mapped[RunStatus] = mapped_column(
        Enum(RunStatus, name="run_status", native_enum=False, length=16), default=RunStatus.queued
    )
    spec: Mapped[dict[str, Any]]
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    name: Mapped[str | None] = mapped_column(String(200))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    sweep_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sweeps.id", ondelete="SET NULL"))
    # The key that submitted it; None (runs from before owners were recorded) leaves it to admin keys.
    owner_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL", name="fk_runs_owner_key_id")
    )
    queue: Mapped[str] = mapped_column(String(32), default="cpu")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    sweep: Mapped[Sweep | None] = relationship(back_populates="runs")
    parent: Mapped[Run | None] = relationship(remote_side=[id])

    __table_args__ = (
        Index("ix_runs_status_created", "status", "created_at"),
        Index("ix_runs_sweep", "sweep_id"),
        Index("ix_runs_parent", "parent_id"),
        Index("ix_runs_owner_created", "owner_key_id", "created_at"),
    )


class MetricPoint(Base):
    """One value of one series: narrow rows, unique on (run, key, step); the primary key serves a run's series."""

    __tablename__ = "metric_points"

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    time: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """A line of a run's log: state changes, warnings, errors."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(default=utcnow)
    level: Mapped[str] = mapped_column(String(16), default="info")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Artifact(Base):
    """A file a run produced (checkpoint, model, samples), with its size and hash."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvalSample(Base):
    """One judged answer of a safety evaluation: what the prompt was (its text, or only its hash where the set is
    sensitive), what the model answered, and what the judge said, so a rate can be audited down to its answers."""

    __tablename__ = "eval_samples"
    __table_args__ = (Index("ix_eval_samples_run_step", "run_id", "step", "prompt_set"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(BigInteger)
    prompt_set: Mapped[str] = mapped_column(String(32))  # "harmful" or "harmless"
    prompt_id: Mapped[str] = mapped_column(String(64))  # its place in the run's fixed evaluation subset
    prompt_sha256: Mapped[str] = mapped_column(String(64))  # the same prompt in any run or step has the same hash
    prompt: Mapped[str | None] = mapped_column(Text)  # None where the set's texts are not to be stored
    decoding: Mapped[str] = mapped_column(String(16))  # "greedy", or "sampled" (sample_index 0..K-1)
    sample_index: Mapped[int] = mapped_column(Integer, default=0)
    answer: Mapped[str] = mapped_column(Text)
    judge: Mapped[str] = mapped_column(String(200))
    judge_version: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str | None] = mapped_column(String(32))  # "refused" or "answered"
    score: Mapped[float | None] = mapped_column(
        Float
    )  # the judge's harmfulness score, 0 (safe) to 1, where it gives one
    kl: Mapped[float | None] = mapped_column(Float)  # this answer's log-ratio to the reference model, where measured


class RememberedEvaluation(Base):
    """A safety evaluation remembered by its fingerprint (frpo_core.safety.memo), so a later run evaluating the same
    weights on the same prompts with the same decoding takes its metrics (and copies its answers) instead of
    evaluating again: `key` covers everything but the reference, whose weights' digest is `reference`."""

    __tablename__ = "evaluation_memos"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    weights: Mapped[str] = mapped_column(String(64))  # the evaluated weights' digest (also inside `key`)
    reference: Mapped[str | None] = mapped_column(String(64))  # the KL's reference weights' digest; None: no KL
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(BigInteger)
    metrics: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A bearer key, stored only as a SHA-256 hash of its secret; shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """What a POST with an Idempotency-Key answered, so a retry of the same request gets the same answer."""

    __tablename__ = "idempotency_records"

    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
