"""lm-eval data checked before a benchmark's model loads: missing local files and uncached hub datasets named with
the command that fetches them, fast and whatever this machine's network; offline decided from what is cached."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from frpo_core.capability.harness import run_lm_eval
from frpo_core.capability.harness_data import BenchmarkDataMissing, TaskData, check_lm_eval_data
from frpo_core.tiny import build_tiny_model


def task_yaml(task: str, dataset_path: str, extra: str = "") -> str:
    """An lm-eval generation task reading ``dataset_path`` (config ``default``, split ``test``), and ``extra`` YAML."""
    return (
        f"task: {task}\ndataset_path: {dataset_path}\ndataset_name: default\noutput_type: generate_until\n"
        'test_split: test\ndoc_to_text: "{{question}}"\ndoc_to_target: "{{answer}}"\n'
        'generation_kwargs:\n  until: ["\\n"]\n  max_gen_toks: 4\nmetric_list:\n  - metric: exact_match\n'
        f"metadata:\n  version: 1.0\n{extra}"
    )


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The hub as seen by the checks, whatever this machine's network: an empty ``datasets`` cache of its own, the
    offline switches off, and the hub's address a local port with nothing listening (refused at once, never a DNS
    wait). Returns the cache folder."""
    datasets_config = pytest.importorskip("datasets.config")
    import huggingface_hub.constants

    cache = tmp_path / "datasets-cache"
    cache.mkdir()
    monkeypatch.setattr(datasets_config, "HF_DATASETS_CACHE", cache)
    for module, name in [
        (huggingface_hub.constants, "HF_HUB_OFFLINE"),
        (datasets_config, "HF_HUB_OFFLINE"),
        (datasets_config, "HF_DATASETS_OFFLINE"),
    ]:
        monkeypatch.setattr(module, name, False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setattr(datasets_config, "HF_ENDPOINT", closed)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", closed)
    return cache


def cache_hub_dataset(cache: Path, repo_id: str, rows: list[dict], work: Path) -> None:
    """Put ``rows`` (config ``default``, split ``test``) into the ``datasets`` cache as ``load_dataset(repo_id)``
    would have left it on a machine with network: prepared from a local JSON-lines file, then filed under the hub
    id's cache folder, so that offline ``datasets`` finds it as a downloaded hub dataset."""
    import datasets

    work.mkdir()
    source = work / "rows.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    builder = datasets.load_dataset_builder("json", data_files={"test": str(source)}, cache_dir=str(work / "build"))
    builder.download_and_prepare()
    owner, name = repo_id.split("/")
    target = cache / f"{owner}___{name}" / "default" / "0.0.0" / ("0" * 16)
    shutil.copytree(builder.cache_dir, target)
    for arrow in target.glob("json-*.arrow"):
        arrow.rename(target / arrow.name.replace("json-", f"{name}-", 1))


def test_a_hub_dataset_not_cached_fails_fast_naming_the_download_before_the_model_loads(tmp_path, hub):
    """A task folder whose data is not here: a hub dataset that is not cached, with the hub unreachable, and a local
    data file that does not exist. One error names both, the command that fetches the hub dataset and the cache to
    copy, in seconds (lm-eval's task index takes most of them), before any model loads."""
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (pip install -e '.[bench-eval]')")
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "hub.yaml").write_text(task_yaml("frpo_hub_task", "frpo-lab-tests/not-cached"))
    absent = tmp_path / "absent.jsonl"
    local = task_yaml("frpo_local_task", "json", f"dataset_kwargs:\n  data_files:\n    test: {absent}\n")
    (folder / "local.yaml").write_text(local)
    start = time.monotonic()
    with pytest.raises(BenchmarkDataMissing) as caught:
        run_lm_eval(tmp_path / "no-model-needed", [folder])
    elapsed = time.monotonic() - start
    message = str(caught.value)
    # the model folder does not exist: reaching the model would be another error, so the data was checked first
    print(f"data check failed after {elapsed:.1f} s")
    assert isinstance(caught.value, RuntimeError)
    assert f"frpo_local_task: {absent} does not exist" in message
    assert "frpo_hub_task: hub dataset frpo-lab-tests/not-cached, config default, not in the datasets cache" in message
    assert "cannot be reached" in message and str(hub) in message
    fetch = "python -c \"import datasets; datasets.load_dataset('frpo-lab-tests/not-cached', name='default')\""
    assert fetch in message


def test_shipped_hub_tasks_and_groups_offline_name_every_dataset(tmp_path, hub):
    """``minerva_math500`` and the ``mmlu`` group (57 subtasks: 57 configs of one hub dataset) with an empty cache,
    offline: one error, one line and one command per dataset, in seconds, before any model loads."""
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (pip install -e '.[bench-eval]')")
    start = time.monotonic()
    with pytest.raises(BenchmarkDataMissing) as caught:
        run_lm_eval(tmp_path / "no-model-needed", ["minerva_math500", "mmlu"], offline=True)
    elapsed = time.monotonic() - start
    message = str(caught.value)
    print(f"data check failed after {elapsed:.1f} s")  # seconds, lm-eval's task index most of them; not asserted
    assert "minerva_math500: hub dataset HuggingFaceH4/MATH-500, config default" in message
    assert "mmlu (57 tasks): hub dataset cais/mmlu, configs abstract_algebra, anatomy," in message
    assert "offline mode is on" in message
    assert "datasets.load_dataset('HuggingFaceH4/MATH-500', name='default')" in message
    assert "[datasets.load_dataset('cais/mmlu', name=name) for name in ['abstract_algebra', " in message


def test_an_unknown_task_name_is_named_before_the_model_loads(tmp_path):
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (pip install -e '.[bench-eval]')")
    with pytest.raises(ValueError, match="'minerva_math5000' is no lm-eval task"):
        run_lm_eval(tmp_path / "no-model-needed", ["minerva_math5000"], offline=True)


class _Hub(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_offline_is_decided_from_what_is_cached_and_whether_the_hub_answers(tmp_path, hub, monkeypatch):
    """Cached data runs offline unless ``offline=False``; missing data runs online when the hub answers, fails when
    it does not or when offline mode is on (``HF_HUB_OFFLINE``)."""
    datasets_config = pytest.importorskip("datasets.config")
    cache_hub_dataset(hub, "frpo-lab-tests/cached", [{"question": "1+1=", "answer": "2"}], tmp_path / "work")
    cached = TaskData("cached_task", "cached_task", "frpo-lab-tests/cached", "default", {})
    missing = TaskData("missing_task", "missing_task", "frpo-lab-tests/absent", "default", {})
    assert check_lm_eval_data([cached]) is True and check_lm_eval_data([cached], offline=False) is False
    with pytest.raises(BenchmarkDataMissing, match="cannot be reached"):
        check_lm_eval_data([cached, missing])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(datasets_config, "HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        assert check_lm_eval_data([cached, missing]) is False  # the hub answers: lm-eval may download
        monkeypatch.setattr(datasets_config, "HF_DATASETS_OFFLINE", True)  # as HF_DATASETS_OFFLINE=1 sets it
        assert check_lm_eval_data([cached]) is True and check_lm_eval_data([cached], offline=False) is True
        with pytest.raises(BenchmarkDataMissing, match="offline mode is on"):
            check_lm_eval_data([missing])
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_a_cached_hub_dataset_runs_offline_on_the_tiny_model(tmp_path, hub):
    """A task on a hub dataset that is in the cache runs with the hub unreachable: offline, decided, recorded."""
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (pip install -e '.[bench-eval]')")
    rows = [{"question": f"{i}+1=", "answer": str(i + 1)} for i in range(3)]
    cache_hub_dataset(hub, "frpo-lab-tests/cached", rows, tmp_path / "work")
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "cached.yaml").write_text(task_yaml("frpo_cached_task", "frpo-lab-tests/cached"))
    result = run_lm_eval(build_tiny_model(tmp_path / "model"), [folder], batch_size=4)
    assert result.generation["offline"] is True and result.n_samples == {"frpo_cached_task": 3}
    assert result.generation["dataset"]["frpo_cached_task"]["dataset_path"] == "frpo-lab-tests/cached"
