"""Evaluation samples on both databases: stored as judged, replaced when a step is evaluated again, paged, filtered."""

from __future__ import annotations

import pytest

from store.db import session_scope
from store.queries import NotFound
from store.samples import Sample, list_samples, prompt_hash, sample_steps, write_samples


def judged(prompt_set: str, verdicts: str, *, kl: float | None = 0.5) -> list[Sample]:
    """One sample per letter of `verdicts`: r = refused, a = answered."""
    return [
        Sample(
            prompt_set,
            str(i),
            f"prompt {i}",
            f"answer {i}",
            "refusal-matcher",
            "1",
            verdict="refused" if v == "r" else "answered",
            kl=kl,
        )  # fmt: skip
        for i, v in enumerate(verdicts)
    ]


def test_a_step_evaluated_again_keeps_one_copy(engine, run_id):
    with session_scope(engine) as session:
        write_samples(session, run_id, 10, judged("harmful", "rra") + judged("harmless", "aa"))
    with session_scope(engine) as session:  # a resumed run evaluates step 10 again
        write_samples(session, run_id, 10, judged("harmful", "raa"))
        write_samples(session, run_id, 20, judged("harmful", "a"))
    with session_scope(engine) as session:
        harmful = list_samples(session, run_id, step=10, prompt_set="harmful")
        assert [s.verdict for s in harmful] == ["refused", "answered", "answered"]
        assert len(list_samples(session, run_id, step=10, prompt_set="harmless")) == 2  # the other set untouched
        assert sample_steps(session, run_id) == [10, 20]


def test_filters_and_pages(engine, run_id):
    with session_scope(engine) as session:
        write_samples(session, run_id, 0, judged("harmful", "rarar"))
    with session_scope(engine) as session:
        refused = list_samples(session, run_id, verdict="refused")
        assert [s.prompt_id for s in refused] == ["0", "2", "4"]
        first = list_samples(session, run_id, limit=2)
        rest = list_samples(session, run_id, after_id=first[-1].id)
        assert [s.prompt_id for s in first + list(rest)] == ["0", "1", "2", "3", "4"]


def test_a_sensitive_set_keeps_only_the_hash_and_non_finite_values_become_null(engine, run_id):
    with session_scope(engine) as session:
        write_samples(session, run_id, 0, judged("harmful", "r", kl=float("nan")), keep_prompts=False)
    with session_scope(engine) as session:
        [sample] = list_samples(session, run_id)
        assert sample.prompt is None and sample.prompt_sha256 == prompt_hash("prompt 0")
        assert sample.kl is None and sample.answer == "answer 0"


def test_an_unknown_run_is_not_found(engine):
    import uuid

    with session_scope(engine) as session, pytest.raises(NotFound):
        list_samples(session, uuid.uuid4())
