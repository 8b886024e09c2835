"""Safety evaluations remembered in the store, so the runs of a sweep evaluate shared weights once.

Every RL run from one start evaluates that start at its step 0, and a pipeline's fine-tuning evaluates the RL run's
final model, which the RL run evaluated at its end. :class:`StoreMemo` is the store's side of
`frpo_core.safety.memo.EvaluationMemo`: it remembers each run's step-0 and final evaluations under their fingerprint
and, where an earlier one may stand for a new step-0 evaluation (`frpo_core.safety.memo.reuse`: the same weights,
tokenizer, prompts, decoding, judges and numerics), writes its metrics (through the callback, as an evaluation's
are), copies its judged answers and records an event naming the run and step they came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from sqlalchemy import Engine

from frpo_core.safety.memo import Fingerprint, Reuse, as_own_reference, reuse
from store.events import add_event
from store.leases import Attempt, attempt_scope
from store.memos import copy_samples, remember_evaluation, remembered_evaluations
from store.retry import retrying
from store.settings import get_settings


class StoreMemo:
    """Evaluations of `attempt`'s run remembered in, and recalled from, the store (fenced by the attempt, retried
    through an outage as every worker write). `prompt_texts` ('keep' or 'hash') is part of the key: the copied
    answers hold the prompts' texts only where both runs keep them."""

    def __init__(self, engine: Engine, attempt: Attempt, prompt_texts: str) -> None:
        self.engine = engine
        self.attempt = attempt
        self.prompt_texts = prompt_texts

    def _key(self, fingerprint: Fingerprint) -> str:
        return hashlib.sha256(f"{fingerprint.answers}\0{self.prompt_texts}".encode()).hexdigest()

    def recall(self, step: int, now: Fingerprint) -> dict[str, float] | None:
        run_id = self.attempt.run_id

        def read() -> dict[str, float] | None:
            with attempt_scope(self.engine, self.attempt) as session:
                for earlier in remembered_evaluations(session, self._key(now), run_id):
                    how = reuse(Fingerprint(now.answers, earlier.weights, earlier.reference), now)
                    if how is None:
                        continue
                    own = how is Reuse.own_reference
                    copied = copy_samples(session, earlier, run_id, step, kl_zero=own)
                    message = (
                        f"step-{step} evaluation reused from run {earlier.run_id} step {earlier.step}: the same "
                        f"weights (sha256 {now.weights[:12]}…), prompts, decoding and judges"
                        + ("; every KL 0, the model is its own reference" if own else "")
                    )
                    add_event(
                        session,
                        run_id,
                        message,
                        reused_from=str(earlier.run_id),
                        reused_step=earlier.step,
                        reuse=how.value,
                        weights=now.weights,
                        samples=copied,
                    )
                    return as_own_reference(earlier.metrics) if own else dict(earlier.metrics)
            return None

        return retrying(read, get_settings().store_outage_seconds, f"recalling an evaluation of run {run_id}")

    def remember(self, step: int, fingerprint: Fingerprint, metrics: Mapping[str, float]) -> None:
        def write() -> None:
            with attempt_scope(self.engine, self.attempt) as session:
                remember_evaluation(
                    session,
                    key=self._key(fingerprint),
                    weights=fingerprint.weights,
                    reference=fingerprint.reference,
                    run_id=self.attempt.run_id,
                    step=step,
                    metrics=metrics,
                )

        retrying(write, get_settings().store_outage_seconds, f"remembering an evaluation of run {self.attempt.run_id}")
