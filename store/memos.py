"""Safety evaluations remembered by fingerprint, and their answers copied to the run that reuses them.

The fingerprint and the rule for when one evaluation may stand for another are frpo_core's (frpo_core.safety.memo);
the store keeps each remembered evaluation's metrics beside where it was measured (run and step), so a reuse can
copy that evaluation's judged answers (store.samples) and say where they came from.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import EvalSample, RememberedEvaluation, Run


def remember_evaluation(
    session: Session,
    *,
    key: str,
    weights: str,
    reference: str | None,
    run_id: uuid.UUID,
    step: int,
    metrics: Mapping[str, float],
) -> None:
    """Keep one evaluation (its metrics, where it was measured) under `key`, once per key and reference."""
    known = session.scalar(
        select(RememberedEvaluation.id).where(RememberedEvaluation.key == key, _same_reference(reference))
    )
    if known is None:
        session.add(
            RememberedEvaluation(
                key=key, weights=weights, reference=reference, run_id=run_id, step=step, metrics=dict(metrics)
            )
        )


def _same_reference(reference: str | None):
    column = RememberedEvaluation.reference
    return column.is_(None) if reference is None else column == reference


def remembered_evaluations(session: Session, key: str, for_run: uuid.UUID) -> list[RememberedEvaluation]:
    """Every evaluation remembered under `key` (one per reference) of a run with `for_run`'s owner, oldest first.
    Only the owner's own: a reused evaluation's event names the run it came from, and a submit key must not learn
    another key's run ids (api: another owner's run is a 404)."""
    owner = select(Run.owner_key_id).where(Run.id == for_run).scalar_subquery()
    same_owner = Run.owner_key_id.is_not_distinct_from(owner)
    query = (
        select(RememberedEvaluation)
        .join(Run, Run.id == RememberedEvaluation.run_id)
        .where(RememberedEvaluation.key == key, same_owner)
        .order_by(RememberedEvaluation.id)
    )
    return list(session.scalars(query))


def copy_samples(
    session: Session, source: RememberedEvaluation, run_id: uuid.UUID, step: int, *, kl_zero: bool = False
) -> int:
    """Copy the judged answers of the evaluation `source` remembers to `run_id` at `step`, replacing what that run
    holds at that step; with `kl_zero`, each answer's KL is 0 (the model is its own reference there)."""
    rows = session.scalars(
        select(EvalSample).where(EvalSample.run_id == source.run_id, EvalSample.step == source.step)
    ).all()
    session.query(EvalSample).filter(EvalSample.run_id == run_id, EvalSample.step == step).delete()
    columns = [c.key for c in EvalSample.__table__.columns if c.key not in ("id", "run_id", "step")]
    for row in rows:
        copied = {name: getattr(row, name) for name in columns}
        if kl_zero and copied["kl"] is not None:
            copied["kl"] = 0.0
        session.add(EvalSample(run_id=run_id, step=step, **copied))
    return len(rows)
