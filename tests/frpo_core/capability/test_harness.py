"""Benchmarks: lm-eval on the tiny model with the shipped offline task (generative) and a task folder shipped with
the tests (multiple choice), EvalPlus-style code pass@1 scored in the sandbox, and the shipped code SFT set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frpo_core.capability.harness import LOCAL_TASKS_DIR, run_lm_eval

TOY_CHOICE = Path(__file__).parents[2] / "data" / "lm_eval_tasks" / "toy_choice"


@pytest.mark.slow
def test_lm_eval_on_the_tiny_model_with_the_shipped_offline_task(tiny_model):
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (pip install -e '.[bench-eval]')")
    result = run_lm_eval(tiny_model, ["toy_arith"], offline=True, batch_size=8, system_prompt="Answer briefly.")
    key = "toy_arith/exact_match/last_number"
    assert 0.0 <= result.metrics[key] <= 1.0 and key in result.stderr
    assert result.task_versions == {"toy_arith": "2.0"} and result.n_samples == {"toy_arith": 100}
    assert result.package_versions["lm_eval"] and len(result.dataset_hashes["toy_arith"]) == 64
    assert result.generation["task_generation_kwargs"]["toy_arith"]["max_gen_toks"] == 16
    assert result.generation["offline"] is True
    samples = result.samples["toy_arith"]
    assert len(samples) == 100 and "Answer briefly." in samples[0]["arguments"][0][0]  # system prompt, chat template
    json.dumps(result.to_dict())

    again = run_lm_eval(tiny_model, [LOCAL_TASKS_DIR / "toy_arith"], limit=4)  # a task folder; offline decided
    assert again.n_samples == {"toy_arith": 4} and key in again.metrics
    assert again.generation["offline"] is True  # its data is local: nothing to ask the hub


@pytest.mark.slow
def test_lm_eval_multiple_choice_from_a_local_task_folder(tiny_model):
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (pip install -e '.[bench-eval]')")
    result = run_lm_eval(tiny_model, [str(TOY_CHOICE)], offline=True, batch_size=4)  # a folder, given as a path
    assert set(result.metrics) == set(result.stderr) == {"toy_choice/acc", "toy_choice/acc_norm"}
    assert all(0.0 <= value <= 1.0 for value in result.metrics.values())
    assert result.task_versions == {"toy_choice": "1.0"} and result.n_samples == {"toy_choice": 8}
    assert len(result.dataset_hashes["toy_choice"]) == 64
    assert "toy_choice" not in result.generation["task_generation_kwargs"]  # log-likelihoods: nothing generated
    samples = result.samples["toy_choice"]
    assert len(samples) == 8 and all(len(sample["arguments"]) == 2 for sample in samples)  # one per choice
    json.dumps(result.to_dict())


def test_a_missing_task_folder_is_named_before_anything_loads(tmp_path):
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (pip install -e '.[bench-eval]')")
    for missing in (tmp_path / "absent", str(tmp_path / "absent")):  # a Path, or a string with a slash (a spec's)
        with pytest.raises(ValueError, match="task folder .*absent' does not exist"):
            run_lm_eval(tmp_path / "no-model-needed", [missing], offline=True)


def test_ifeval_without_nltk_data_names_the_download_before_loading_anything(tmp_path, monkeypatch):
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (pip install -e '.[bench-eval]')")
    nltk = pytest.importorskip("nltk", reason="lm-evaluation-harness's ifeval extra is not installed")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # an NLTK data path with nothing in it
    with pytest.raises(RuntimeError, match="python -m nltk.downloader punkt_tab punkt"):
        run_lm_eval(tmp_path / "no-model-needed", ["ifeval"], offline=True)
