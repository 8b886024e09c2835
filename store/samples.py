"""Evaluation samples: every judged answer a safety evaluation produced, kept so a rate can be audited.

A rate such as `eval/refusal_rate` at step 40 is the mean of the verdicts stored here for that run, step and prompt
set. Writing one evaluation's samples replaces whatever that run held for the same step, set and decoding, so a
resumed job that evaluates a step again leaves one copy, as metric points do.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store.models import EvalSample
from store.queries import get_run


@dataclass(frozen=True)
class Sample:
    """One judged answer, as an evaluation hands it over (the store adds run, step and the prompt's hash)."""

    prompt_set: str
    prompt_id: str
    prompt: str
    answer: str
    judge: str
    judge_version: str
    verdict: str | None = None
    score: float | None = None
    kl: float | None = None
    decoding: str = "greedy"
    sample_index: int = 0


def prompt_hash(prompt: str) -> str:
    """The prompt's SHA-256: the same prompt in any run or step, even where its text is not stored."""
    return hashlib.sha256(prompt.encode()).hexdigest()


def write_samples(
    session: Session, run_id: uuid.UUID, step: int, samples: Sequence[Sample], *, keep_prompts: bool = True
) -> int:
    """Store one evaluation's samples at `step`, replacing the run's earlier ones for the same step, set and
    decoding. With `keep_prompts` False only each prompt's hash is kept (a set whose texts must not be copied)."""
    for prompt_set, decoding in {(s.prompt_set, s.decoding) for s in samples}:
        session.execute(
            delete(EvalSample).where(
                EvalSample.run_id == run_id,
                EvalSample.step == step,
                EvalSample.prompt_set == prompt_set,
                EvalSample.decoding == decoding,
            )
        )
    session.add_all(
        EvalSample(
            run_id=run_id,
            step=step,
            prompt_set=s.prompt_set,
            prompt_id=s.prompt_id,
            prompt_sha256=prompt_hash(s.prompt),
            prompt=s.prompt if keep_prompts else None,
            decoding=s.decoding,
            sample_index=s.sample_index,
            answer=s.answer,
            judge=s.judge,
            judge_version=s.judge_version,
            verdict=s.verdict,
            score=_finite(s.score),
            kl=_finite(s.kl),
        )
        for s in samples
    )
    return len(samples)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def list_samples(
    session: Session,
    run_id: uuid.UUID,
    *,
    owner: int | None = None,
    step: int | None = None,
    prompt_set: str | None = None,
    verdict: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> Sequence[EvalSample]:
    """A page of a run's samples in the order written (step, then prompt), newer than `after_id`; NotFound for a run
    `owner` does not own (see store.queries.owner_scope)."""
    get_run(session, run_id, owner)
    query = select(EvalSample).where(EvalSample.run_id == run_id, EvalSample.id > after_id)
    for column, value in ((EvalSample.step, step), (EvalSample.prompt_set, prompt_set), (EvalSample.verdict, verdict)):
        if value is not None:
            query = query.where(column == value)
    return session.scalars(query.order_by(EvalSample.id).limit(limit)).all()


def sample_steps(session: Session, run_id: uuid.UUID, owner: int | None = None) -> list[int]:
    """The steps at which the run stored samples, in order."""
    get_run(session, run_id, owner)
    rows: Iterable[int] = session.scalars(
        select(EvalSample.step).where(EvalSample.run_id == run_id).distinct().order_by(EvalSample.step)
    )
    return list(rows)
