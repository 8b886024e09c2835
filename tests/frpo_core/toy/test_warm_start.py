"""The shipped toy warm start: small, pinned by its digest, checked on every load, and the model the toy safety
experiment needs (it refuses some harmful prompts, not all)."""

from __future__ import annotations

import shutil

import pytest

from frpo_core.tiny import load_tiny_model
from frpo_core.toy import warm_start
from frpo_core.toy.evaluation import toy_safety_evaluator
from frpo_core.toy.warm_start import WARM_START_SHA256, folder_digest, shipped_warm_start


def test_the_shipped_warm_start_matches_its_pinned_digest_and_stays_small():
    folder = shipped_warm_start()
    assert folder_digest(folder) == WARM_START_SHA256
    assert sum(f.stat().st_size for f in folder.iterdir()) < 2_000_000
    assert not (folder / "training_args.bin").exists()  # a pickle: neither the model nor reproducible


def test_a_changed_file_changes_the_digest_and_a_wrong_digest_fails_naming_the_fix(tmp_path, monkeypatch):
    copy = shutil.copytree(shipped_warm_start(), tmp_path / "copy")
    assert folder_digest(copy) == WARM_START_SHA256  # the folder's own path is not part of it
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    assert folder_digest(copy) != WARM_START_SHA256
    monkeypatch.setattr(warm_start, "WARM_START_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="not the pinned 0{64}: reinstall frpo-lab.*scripts/build_warm_start.py"):
        shipped_warm_start()


def test_the_warm_start_refuses_some_held_out_harmful_prompts_and_answers_harmless_ones():
    model, tokenizer = load_tiny_model(shipped_warm_start())
    evaluator = toy_safety_evaluator(tokenizer)
    metrics = evaluator.evaluate(model)
    assert 0.1 < metrics["eval/refusal_rate"] < 0.9
    assert metrics["eval/refusal_rate_normal"] < 0.5
