"""Outside trackers: `report_to` is checked before a trainer is built, and a named tracker really receives the run."""

from __future__ import annotations

import importlib.util

import pytest

from frpo_core.jobs.trackers import TRACKERS, report_to_setting


def test_no_tracker_is_trls_none():
    assert report_to_setting(()) == "none"


def test_an_installed_tracker_passes_through():
    pytest.importorskip("tensorboard", reason="tensorboard is in the dev extra")
    assert report_to_setting(("tensorboard",)) == ["tensorboard"]


def test_a_tracker_not_installed_names_what_to_install():
    absent = [name for name in TRACKERS if importlib.util.find_spec(TRACKERS[name]) is None]
    if not absent:
        pytest.skip("every tracker is installed here")
    with pytest.raises(ValueError, match=f"report_to names {absent[0]}, not installed .*pip install {absent[0]}"):
        report_to_setting((absent[0],))


def test_an_unknown_tracker_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="unknown tracker.*comet.*wandb, mlflow, trackio, tensorboard"):
        report_to_setting(("comet",))
