"""0.1's module paths keep working for one release, each name warning where it moved."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from frpo_core._moved import MOVED, RENAMED


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("frpo_core.rl", "RLJob", "frpo_core.jobs.rl"),
        ("frpo_core.rl", "GpuOptions", "frpo_core.jobs.gpu"),
        ("frpo_core.finetune", "SFTJob", "frpo_core.jobs.sft"),
        ("frpo_core.mathrl", "toy_math_rows", "frpo_core.toy.arithmetic"),
        ("frpo_core.mathrl", "MathReward", "frpo_core.math.reward"),
        ("frpo_core.benchmarks", "run_evalplus", "frpo_core.capability.coding"),
        ("frpo_core.rewards", "build_rewards", "frpo_core.jobs.rewards"),
        ("frpo_core.data", "load_prompts", "frpo_core.safety.prompts"),
        ("frpo_core.data", "load_sft", "frpo_core.data.conversations"),
        ("frpo_core.toy", "warm_start_rows", "frpo_core.toy.safety"),
    ],
)
def test_an_old_import_gives_the_moved_object_and_says_where_it_went(old, name, new):
    module = __import__(new, fromlist=[name])
    with pytest.warns(FutureWarning, match=rf"{old}\.{name} moved to {new}\.{name}"):
        moved = getattr(__import__(old, fromlist=[name]), name)
    assert moved is getattr(module, name)


def test_a_renamed_name_resolves_to_its_new_name():
    ((old, name), (new, new_name)) = next(iter(RENAMED.items()))
    with pytest.warns(FutureWarning, match=f"{new}.{new_name}"):
        moved = getattr(__import__(old, fromlist=[name]), name)
    assert moved is getattr(__import__(new, fromlist=[new_name]), new_name)


def test_every_old_module_imports_and_a_name_that_never_existed_fails_naming_where_to_look():
    for old in MOVED:
        importlib.import_module(old)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name' .*moved to frpo_core.jobs.rl"):
        _ = importlib.import_module("frpo_core.rl").no_such_name


def test_python_m_an_old_script_runs_the_moved_one_with_a_warning():
    result = subprocess.run(
        [sys.executable, "-m", "frpo_core.quickstart", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "python -m frpo_core.toy.quickstart" in result.stdout  # the moved script's own help
    assert "FutureWarning: python -m frpo_core.quickstart moved to python -m frpo_core.toy.quickstart" in result.stderr
