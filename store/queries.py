"""The queries the API needs: API keys, jobs (runs), sweeps, metrics, events, artifacts. No torch, no HTTP.

Functions take a Session and never commit: the caller owns the transaction (the API commits once per request, only
on success). State changes that race a worker (cancel) are conditional UPDATEs, so the database decides who wins.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from store.events import add_event
from store.leases import cancel_descendants
from store.models import (
    ApiKey,
    Artifact,
    Event,
    IdempotencyRecord,
    MetricPoint,
    Run,
    RunKind,
    RunStatus,
    Sweep,
    utcnow,
)
from store.specs import JOB_SPEC, EvaluateSpec, FinetuneSpec, PipelineSpec, SpecError, SweepSpec, TrainSpec

AnySpec = TrainSpec | FinetuneSpec | EvaluateSpec

KEY_PREFIX = "frpo"
# Each scope implies the ones before it: admin ⊃ submit ⊃ read.
SCOPES = ("read", "submit", "admin")
# A key's last use is kept to the minute: written at most once a minute per key (api/key_use.py).
LAST_USED_RESOLUTION = timedelta(minutes=1)


class QueryError(Exception):
    """A request the store refuses; `code` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(QueryError):
    code = "not_found"


class Conflict(QueryError):
    code = "conflict"


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# --- API keys -------------------------------------------------------------------------------------------------------


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, name: str, scope: str) -> str:
    """Create a key with `scope` (read, submit or admin) and return it in full: `frpo_<prefix>_<secret>`.

    Only the SHA-256 of the secret is stored, so this is the one time the key can be shown.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    prefix = secrets.token_hex(6)  # hex: never contains the "_" separator
    secret = secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, prefix=prefix, secret_hash=hash_secret(secret), scopes=[scope]))
    session.flush()
    return f"{KEY_PREFIX}_{prefix}_{secret}"


def authenticate(session: Session, token: str) -> ApiKey | None:
    """The live key that `token` proves, or None (malformed, unknown, wrong secret or revoked)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    # Hash even when the prefix is unknown so timing says nothing about which prefixes exist.
    candidate = hash_secret(parts[2])
    if key is None or not hmac.compare_digest(candidate, key.secret_hash):
        return None
    if key.revoked_at is not None:
        return None
    return key


def key_has_scope(key: ApiKey, needed: str) -> bool:
    granted = max((SCOPES.index(s) for s in key.scopes if s in SCOPES), default=-1)
    return granted >= SCOPES.index(needed)


def owner_scope(key: ApiKey) -> int | None:
    """Whose runs and sweeps `key` sees and acts on: its own (its id) for a submit key; every one (None) for an admin
    key, and for a read-only key, an observer such as the dashboard that changes nothing. Another owner's run is
    reported as not found, never as forbidden, so ids do not leak."""
    if key_has_scope(key, "admin") or not key_has_scope(key, "submit"):
        return None
    return key.id


def touch_api_key(session: Session, key_id: int) -> None:
    """Record use, unless the stored value is under LAST_USED_RESOLUTION old (a twin request wrote it)."""
    now = utcnow()
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)  # SQLite's naive datetimes cannot be compared in Python
    )


def revoke_api_key(session: Session, prefix: str) -> bool:
    """Revoke the key with `prefix`; False if there is no live key with it."""
    result = session.execute(
        update(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return result.rowcount > 0


def list_api_keys(session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.id)).all()


# --- idempotency ----------------------------------------------------------------------------------------------------


def get_idempotency_record(session: Session, api_key_id: int, key: str, max_age: timedelta) -> IdempotencyRecord | None:
    """The answer stored under `key`, if it is younger than `max_age` (an older one has expired)."""
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at >= utcnow() - max_age,
        )
    )


def save_idempotency_record(
    session: Session,
    api_key_id: int,
    key: str,
    request_hash: str,
    status_code: int,
    response: dict[str, Any],
    max_age: timedelta,
) -> None:
    """Store an answer under `key`, replacing an expired one (only when the answer is stored: a read takes no lock)."""
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at < utcnow() - max_age,
        )
    )
    session.add(
        IdempotencyRecord(
            api_key_id=api_key_id, key=key, request_hash=request_hash, status_code=status_code, response=response
        )
    )


# --- jobs -----------------------------------------------------------------------------------------------------------


def check_lineage(session: Session, spec: AnySpec, owner: int | None = None) -> Run | None:
    """The run a job starts from (a train or finetune job's `parent_id`, an evaluate job's `run_id`): it must exist (and
    belong to `owner`, if given), have succeeded and have a final model (and the checkpoint at a finetune's
    `parent_step`). Raises SpecError naming the field otherwise; None when the job starts from a model rather than a
    run."""
    field = "run_id" if spec.kind == "evaluate" else "parent_id"
    source_id = getattr(spec, field)
    if source_id is None:
        return None
    source = session.get(Run, source_id)
    if source is None or not _owned(source, owner):
        raise SpecError(field, f"there is no run {source_id}")
    if source.status != RunStatus.succeeded:
        raise SpecError(field, f"run {source_id} is {source.status.value}; it must have succeeded")
    if final_model(session, source_id) is None:
        raise SpecError(field, f"run {source_id} recorded no final model")
    step = getattr(spec, "parent_step", None)
    if step is not None and checkpoint_at(session, source_id, step) is None:
        raise SpecError(
            "parent_step",
            f"run {source_id} kept no checkpoint at step {step}: name a step it saved (save_steps, keep_checkpoints)",
        )
    return source


def final_model(session: Session, run_id: uuid.UUID) -> Artifact | None:
    """The run's final model artifact (the newest one of kind "model")."""
    return session.scalar(
        select(Artifact).where(Artifact.run_id == run_id, Artifact.kind == "model").order_by(Artifact.id.desc())
    )


def checkpoint_at(session: Session, run_id: uuid.UUID, step: int) -> Artifact | None:
    """The run's checkpoint at `step` (the newest attempt's, where a resumed run saved that step twice)."""
    return session.scalar(
        select(Artifact)
        .where(Artifact.run_id == run_id, Artifact.kind == "checkpoint", Artifact.step == step)
        .order_by(Artifact.id.desc())
    )


def create_run(
    session: Session,
    spec: AnySpec,
    *,
    sweep_id: uuid.UUID | None = None,
    parent: Run | None = None,
    extra_tags: dict[str, Any] | None = None,
    owner_key_id: int | None = None,
) -> Run:
    """Insert a queued run for `spec` (defaults filled in), owned by the key `owner_key_id`. The caller commits, then
    enqueues.

    A run started from another (`parent`) inherits its tags (method, λ, β, seed, base model), so a fine-tuning run
    is grouped with the RL run it degrades in every chart.
    """
    inherited = {k: v for k, v in (parent.tags if parent else {}).items() if k not in ("stage", "retry_of")}
    run = Run(
        kind=RunKind(spec.kind),
        status=RunStatus.queued,
        spec=spec.model_dump(mode="json"),
        tags={**inherited, **spec.tags(), **(extra_tags or {})},
        name=spec.name,
        queue=spec.queue,
        sweep_id=sweep_id,
        parent_id=parent.id if parent else None,
        owner_key_id=owner_key_id,
        created_at=utcnow(),
    )
    session.add(run)
    session.flush()
    return run


def create_pipeline(
    session: Session,
    spec: PipelineSpec,
    *,
    sweep_id: uuid.UUID | None = None,
    submitter: ApiKey | None = None,
    **tags: Any,
) -> list[Run]:
    """The pipeline's runs, each the parent of the next, all tagged with the first one's id: train, finetune (one per
    step of `finetune_at`, each from the training run's checkpoint there), then the evaluation of each fine-tuned model
    (`evaluate`), and, with `evaluate_before`, the same evaluation of the trained model (a second child of the training
    run, last in the list). Only the first is to be enqueued: a worker enqueues each later stage when the one before it
    succeeds (see store.leases.parent_ready). The training stage starts from its `parent_id` run if it names one
    (checked: it must have succeeded and be the `submitter`'s to see). Every stage is owned by the `submitter`."""
    tags = {**tags, **spec.tags()}
    owned = _ownership(submitter)
    parent = check_lineage(session, spec.train, owner=_scope(submitter))
    train = create_run(session, spec.train, sweep_id=sweep_id, parent=parent, extra_tags=tags, **owned)
    train.tags = {**train.tags, "pipeline": str(train.id)}
    stage_tags = {**tags, "pipeline": str(train.id)}
    finetunes = [
        create_run(session, finetune, sweep_id=sweep_id, parent=train, extra_tags=stage_tags, **owned)
        for finetune in spec.finetune_specs(train.id)
    ]
    evaluations = [(finetune, "after_finetune") for finetune in finetunes] if spec.evaluate else []
    evaluations += [(train, "before_finetune")] if spec.evaluate_before else []
    evaluated = [
        create_run(
            session,
            spec.evaluate_spec(model.id),
            sweep_id=sweep_id,
            parent=model,
            extra_tags={**stage_tags, "evaluates": when},
            **owned,
        )
        for model, when in evaluations
    ]
    return [train, *finetunes, *evaluated]


def _owned(row: Run | Sweep, owner: int | None) -> bool:
    return owner is None or row.owner_key_id == owner


def _ownership(submitter: ApiKey | None) -> dict[str, int | None]:
    return {"owner_key_id": submitter.id if submitter else None}


def _scope(submitter: ApiKey | None) -> int | None:
    return owner_scope(submitter) if submitter else None


def get_run(session: Session, run_id: uuid.UUID, owner: int | None = None) -> Run:
    """The run `run_id`; NotFound if there is none, or if `owner` is given and does not own it (see owner_scope)."""
    run = session.get(Run, run_id)
    if run is None or not _owned(run, owner):
        raise NotFound(f"no job with id {run_id}")
    return run


@dataclass
class RunPage:
    items: Sequence[Run]
    total: int


def list_runs(
    session: Session,
    *,
    status: RunStatus | None = None,
    kind: RunKind | None = None,
    method: str | None = None,
    sweep_id: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
    owner: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> RunPage:
    """Newest first, with the total matching count for pagination; only `owner`'s runs if given."""
    conditions = []
    if owner is not None:
        conditions.append(Run.owner_key_id == owner)
    if status is not None:
        conditions.append(Run.status == status)
    if kind is not None:
        conditions.append(Run.kind == kind)
    if method is not None:
        conditions.append(Run.tags["method"].as_string() == method)
    if sweep_id is not None:
        conditions.append(Run.sweep_id == sweep_id)
    if parent_id is not None:
        conditions.append(Run.parent_id == parent_id)
    total = session.scalar(select(func.count()).select_from(Run).where(*conditions)) or 0
    items = session.scalars(
        select(Run).where(*conditions).order_by(Run.created_at.desc(), Run.id.desc()).limit(limit).offset(offset)
    ).all()
    return RunPage(items=items, total=total)


def cancel_run(session: Session, run_id: uuid.UUID, owner: int | None = None) -> Run:
    """Queued: cancelled now. Running: flag it; the worker stops it. Finished: Conflict. Another `owner`'s: NotFound.

    Conditional UPDATEs, so a worker claiming the run at the same moment cannot be overwritten.
    """
    get_run(session, run_id, owner)
    now = utcnow()
    cancelled = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.queued)
        .values(status=RunStatus.cancelled, finished_at=now, updated_at=now)
    )
    flagged = 0
    if cancelled.rowcount:
        add_event(session, run_id, "cancelled before it started")
        cancel_descendants(session, run_id, f"cancelled: the run it starts from ({run_id}) was cancelled")
    else:
        flagged = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == RunStatus.running)
            .values(cancel_requested=True, updated_at=now)
        ).rowcount
        if flagged:
            add_event(session, run_id, "cancel requested; the worker will stop the run")
    run = get_run(session, run_id)
    session.refresh(run)
    if not cancelled.rowcount and not flagged:
        raise Conflict(f"job {run_id} has already finished ({run.status.value}); there is nothing to cancel")
    return run


def retry_run(session: Session, run_id: uuid.UUID, owner: int | None = None) -> Run:
    """A new queued run with the old one's spec, parent, sweep, tags (plus retry_of) and owner, whoever retries it.
    Only failed or cancelled ones; another `owner`'s: NotFound.

    A run that starts from another (a pipeline's later stage) is retried only if that one has succeeded: otherwise
    the retry could never start (a stage waits for its parent to succeed). Its parent chain is not retried for it,
    since the new parent would be a different run than the one its spec names; Conflict says what to retry first.
    """
    old = get_run(session, run_id, owner)
    if old.status not in (RunStatus.failed, RunStatus.cancelled):
        raise Conflict(f"job {run_id} is {old.status.value}; only failed or cancelled jobs can be retried")
    if old.parent is not None and old.parent.status != RunStatus.succeeded:
        raise Conflict(
            f"job {run_id} starts from run {old.parent_id}, which is {old.parent.status.value}, so a retry could "
            f"never start: retry run {old.parent_id} (or resubmit the pipeline) first, then submit this stage "
            "with the new run as its parent"
        )
    spec = JOB_SPEC.validate_python(old.spec)
    run = create_run(
        session,
        spec,
        sweep_id=old.sweep_id,
        parent=old.parent,
        extra_tags={**old.tags, "retry_of": str(old.id)},
        owner_key_id=old.owner_key_id,
    )
    add_event(session, run.id, f"retry of {old.id}", retry_of=str(old.id))
    return run


# --- sweeps ---------------------------------------------------------------------------------------------------------


def create_sweep(session: Session, spec: SweepSpec, submitter: ApiKey | None = None) -> tuple[Sweep, list[Run]]:
    """One Sweep row and, per grid point, one queued run or one pipeline (its runs all carry the sweep's id and name),
    all owned by the `submitter`. Returns the sweep and the runs to enqueue now: a pipeline's later stages are
    enqueued when their parent succeeds.
    """
    owned = _ownership(submitter)
    budgets = spec.grpo_budgets.model_dump(exclude_none=True) if spec.grpo_budgets else None  # axes and checkpoints
    sweep = Sweep(
        name=spec.name,
        base_spec=spec.base.model_dump(mode="json"),
        grid={**spec.grid.axes(), **({"grpo_budgets": budgets} if budgets else {})},
        created_at=utcnow(),
        **owned,
    )
    session.add(sweep)
    session.flush()
    first_stages = []
    for point in spec.points():
        if isinstance(point, PipelineSpec):
            first_stages.append(
                create_pipeline(session, point, sweep_id=sweep.id, submitter=submitter, sweep=spec.name)[0]
            )
        else:
            parent = check_lineage(session, point, owner=_scope(submitter))
            first_stages.append(
                create_run(session, point, sweep_id=sweep.id, parent=parent, extra_tags={"sweep": spec.name}, **owned)
            )
    return sweep, first_stages


def get_sweep(session: Session, sweep_id: uuid.UUID, owner: int | None = None) -> tuple[Sweep, Sequence[Run]]:
    """The sweep and its runs; NotFound if there is none, or if `owner` is given and does not own it."""
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or not _owned(sweep, owner):
        raise NotFound(f"no sweep with id {sweep_id}")
    runs = session.scalars(select(Run).where(Run.sweep_id == sweep_id).order_by(Run.created_at, Run.id)).all()
    return sweep, runs


def list_sweeps(
    session: Session, *, owner: int | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[tuple[Sweep, int]], int]:
    """Sweeps newest first (only `owner`'s if given), each with how many jobs carry its id, and the total number."""
    conditions = [Sweep.owner_key_id == owner] if owner is not None else []
    total = session.scalar(select(func.count()).select_from(Sweep).where(*conditions)) or 0
    job_count = select(func.count()).where(Run.sweep_id == Sweep.id).correlate(Sweep).scalar_subquery()
    rows = session.execute(
        select(Sweep, job_count)
        .where(*conditions)
        .order_by(Sweep.created_at.desc(), Sweep.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [(sweep, count) for sweep, count in rows], total


# --- metrics, events, artifacts -------------------------------------------------------------------------------------


def metric_keys(session: Session, run_id: uuid.UUID, owner: int | None = None) -> list[str]:
    get_run(session, run_id, owner)
    return list(
        session.scalars(
            select(MetricPoint.key).where(MetricPoint.run_id == run_id).distinct().order_by(MetricPoint.key)
        )
    )


def metric_series(session: Session, run_id: uuid.UUID, key: str) -> tuple[list[int], list[float]]:
    """The whole series (steps, values) ordered by step; the primary key (run, key, step) serves it."""
    rows = session.execute(
        select(MetricPoint.step, MetricPoint.value)
        .where(MetricPoint.run_id == run_id, MetricPoint.key == key)
        .order_by(MetricPoint.step)
    ).all()
    return [r[0] for r in rows], [r[1] for r in rows]


def list_events(
    session: Session, run_id: uuid.UUID, *, owner: int | None = None, after_id: int = 0, limit: int = 100
) -> Sequence[Event]:
    get_run(session, run_id, owner)
    return session.scalars(
        select(Event).where(Event.run_id == run_id, Event.id > after_id).order_by(Event.id).limit(limit)
    ).all()


def list_artifacts(session: Session, run_id: uuid.UUID, owner: int | None = None) -> Sequence[Artifact]:
    get_run(session, run_id, owner)
    return session.scalars(select(Artifact).where(Artifact.run_id == run_id).order_by(Artifact.id)).all()
