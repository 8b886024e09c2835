"""lm-evaluation-harness tasks (MATH500, MMLU, IFEval) on a local model: the math setting's capability benchmarks.

The math setting is judged by MATH500 accuracy after downstream code SFT, with MBPP+ / HumanEval+ beside it
(:mod:`frpo_core.capability.coding`); MMLU and IFEval round it off (docs/method.md §3, §5 plot 6). The authors ran
``lm_eval`` (``minerva_math500``: vLLM, 0-shot, chat template, the training system prompt, temperature 0,
``max_gen_toks`` 2048).

:func:`run_lm_eval` calls ``lm_eval.simple_evaluate`` with the HF backend (CPU or GPU) or vLLM when asked and
installed, on a local model path, for task names or local task folders. Tasks shipped in
``frpo_core/assets/lm_eval_tasks`` (``toy_arith``, with its own local data) are always on the task path, so the whole
path runs offline on the tiny model. Before the model loads, each task's dataset is read from its config (groups such
as ``mmlu`` expanded) and checked (:mod:`frpo_core.capability.harness_data`): local files must exist, hub datasets
must be in the ``datasets`` cache or the hub reachable, else :class:`BenchmarkDataMissing` names them and the command
that fetches them. The run is offline (the hub's and datasets' offline switches set) when ``HF_HUB_OFFLINE`` says so
or all data is here, so a machine without network never waits on it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from frpo_core.capability.harness_data import check_lm_eval_data, lm_eval_task_data, offline_mode
from frpo_core.capability.results import BenchmarkResult, jsonable, package_versions

LOCAL_TASKS_DIR = Path(str(files("frpo_core").joinpath("assets", "lm_eval_tasks")))
"""lm-eval task folders shipped with the package (each with its own local data); always on the task path."""

IFEVAL_NLTK_RESOURCES = ("tokenizers/punkt_tab", "tokenizers/punkt")
"""NLTK data IFEval needs (word and sentence tokenisers). lm-eval downloads it on import when missing, which waits
on the network when there is none; :func:`require_nltk_data` checks first and names the download instead."""


def require_nltk_data(resources: Sequence[str] = IFEVAL_NLTK_RESOURCES) -> None:
    """Raise ``RuntimeError`` naming the download command when NLTK data that IFEval needs is missing."""
    import nltk

    missing = []
    for resource in resources:
        try:
            nltk.data.find(resource)
        except LookupError:
            missing.append(resource.rsplit("/", 1)[-1])
    if missing:
        raise RuntimeError(
            f"IFEval needs NLTK's {', '.join(missing)} data, which is not installed (searched {nltk.data.path}); "
            f"download it first: python -m nltk.downloader {' '.join(missing)}"
        )


def run_lm_eval(
    model_path: str | Path,
    tasks: Sequence[str | Path],
    *,
    backend: str = "hf",
    num_fewshot: int | None = None,
    limit: int | float | None = None,
    batch_size: int | str = 8,
    apply_chat_template: bool = True,
    system_prompt: str | None = None,
    gen_kwargs: Mapping[str, Any] | None = None,
    device: str | None = None,
    dtype: str = "auto",
    offline: bool | None = None,
    seed: int = 0,
    log_samples: bool = True,
    trust_remote_code: bool = False,
    model_args: Mapping[str, Any] | None = None,
) -> BenchmarkResult:
    """Evaluate the model at ``model_path`` on lm-eval ``tasks`` (names such as ``"minerva_math500"``, ``"mmlu"``,
    ``"ifeval"``, or local task folders) with ``lm_eval.simple_evaluate``.

    ``backend``: ``"hf"`` (transformers; ``device`` defaults to CUDA when present, else the CPU) or ``"vllm"``
    (needs vLLM: the ``gpu`` extra). ``apply_chat_template`` and ``system_prompt`` shape the prompt (the authors:
    chat template, and for MATH500 the training system prompt :data:`frpo_core.math.data.MATH_SYSTEM_PROMPT`);
    ``gen_kwargs`` override the tasks' generation settings (the authors: ``{"temperature": 0, "max_gen_toks": 2048}``).
    ``limit`` evaluates only the first that many documents (or that share) of each task. ``model_args`` pass further
    backend arguments. The per-sample outputs and the data hashes (over lm-eval's per-document hashes) come with
    ``log_samples``.

    Before the model loads, every task's data is checked
    (:func:`frpo_core.capability.harness_data.check_lm_eval_data`, and IFEval's NLTK data with
    :func:`require_nltk_data`): what is missing and cannot be fetched now raises
    :class:`~frpo_core.capability.harness_data.BenchmarkDataMissing`, naming it and the download. ``offline``:
    ``True`` never contacts the network; ``None`` decides (offline when ``HF_HUB_OFFLINE`` is set or everything is
    already here, else online); ``False`` allows the hub even when all is cached. Whether it ran offline is recorded in
    ``generation["offline"]``.
    """
    lm_eval, task_manager_class = _import_lm_eval()
    arguments = _model_arguments(model_path, backend, device, dtype, trust_remote_code, model_args)
    names, folders = _lm_eval_tasks(tasks)
    if any(name.startswith("ifeval") for name in names):
        require_nltk_data()
    task_manager = task_manager_class(include_path=[str(LOCAL_TASKS_DIR), *folders])
    offline = check_lm_eval_data(lm_eval_task_data(task_manager, names), offline)
    settings = {
        "num_fewshot": num_fewshot,
        "batch_size": batch_size,
        "limit": limit,
        "apply_chat_template": apply_chat_template,
        "system_instruction": system_prompt,
        "gen_kwargs": dict(gen_kwargs) if gen_kwargs else None,
        "log_samples": log_samples,
    }
    start = time.monotonic()
    with offline_mode(offline):
        out = lm_eval.simple_evaluate(
            model=backend,
            model_args=arguments,
            tasks=names,
            task_manager=task_manager,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
            **settings,
        )
    generation = {
        "backend": backend,
        "offline": offline,
        "apply_chat_template": apply_chat_template,
        "system_prompt": system_prompt,
        "batch_size": batch_size,
        "limit": limit,
        "seed": seed,
        "gen_kwargs": dict(gen_kwargs or {}),
    }
    return _lm_eval_result(out, str(model_path), generation, time.monotonic() - start)


def _import_lm_eval() -> tuple[Any, Any]:
    """lm-eval's module and its ``TaskManager``, or an ImportError naming the extra that installs it."""
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError as error:
        raise ImportError("lm-evaluation-harness is not installed: pip install -e '.[bench-eval]'") from error
    return lm_eval, TaskManager


def _model_arguments(
    model_path: str | Path,
    backend: str,
    device: str | None,
    dtype: str,
    trust_remote_code: bool,
    model_args: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """lm-eval's ``model_args`` for ``backend``, checked before anything loads (vLLM must be installed to be asked)."""
    if backend not in ("hf", "vllm"):
        raise ValueError(f"backend={backend!r} must be 'hf' or 'vllm'")
    if backend == "vllm" and find_spec("vllm") is None:
        raise ImportError("backend='vllm' needs vLLM (the 'gpu' extra); use backend='hf' on a CPU")
    arguments: dict[str, Any] = {"pretrained": str(model_path), "dtype": dtype, "trust_remote_code": trust_remote_code}
    if backend == "hf":
        import torch

        arguments["device"] = device or ("cuda" if torch.cuda.is_available() else "cpu")
    arguments.update(model_args or {})
    return arguments


def _lm_eval_tasks(tasks: Sequence[str | Path]) -> tuple[list[str], list[str]]:
    """Task names to run and extra task folders: a folder stands for every task its YAML files define. A path (a
    ``Path``, or a name with a slash, which task names never have) must exist, so a mistyped folder fails here,
    named, before the model loads, not as an unknown task name afterwards."""
    names, folders = [], []
    for task in tasks:
        path = Path(task)
        if (isinstance(task, Path) or "/" in str(task)) and not path.exists():
            raise ValueError(f"task folder {str(path)!r} does not exist")
        if path.is_dir():
            defined = [
                match.group(1)
                for yaml_file in sorted(path.rglob("*.yaml"))
                for match in re.finditer(r"^task:\s*([\w.-]+)\s*$", yaml_file.read_text(encoding="utf-8"), re.M)
            ]
            if not defined:
                raise ValueError(f"task folder {str(path)!r} has no YAML file with a 'task:' name")
            folders.append(str(path))
            names.extend(defined)
        else:
            names.append(str(task))
    return names, folders


def _lm_eval_result(
    out: Mapping[str, Any], model_path: str, generation: dict[str, Any], seconds: float
) -> BenchmarkResult:
    """``simple_evaluate``'s output as a :class:`BenchmarkResult`: flat metrics, versions, data hashes, and the
    generation settings (the caller's, with each task's own generation kwargs, shots and dataset)."""
    metrics, stderr = _flatten_lm_eval(out["results"])
    samples = {task: jsonable(rows) for task, rows in out.get("samples", {}).items()}
    configs = out.get("configs", {})
    generation = {
        **generation,
        "num_fewshot": out.get("n-shot", {}),
        "task_generation_kwargs": {
            task: config["generation_kwargs"] for task, config in configs.items() if "generation_kwargs" in config
        },
        "dataset": {
            task: {key: config.get(key) for key in ("dataset_path", "dataset_name", "test_split")}
            for task, config in configs.items()
        },
    }
    return BenchmarkResult(
        suite="lm-eval",
        model_path=model_path,
        metrics=metrics,
        stderr=stderr,
        task_versions={task: str(value) for task, value in out.get("versions", {}).items()},
        package_versions=package_versions("lm_eval", "transformers", "torch", "datasets", "vllm"),
        dataset_hashes={task: _docs_hash(rows) for task, rows in samples.items()},
        n_samples={task: int(counts["effective"]) for task, counts in out.get("n-samples", {}).items()},
        generation=jsonable(generation),
        seconds=seconds,
        samples=samples,
    )


def _flatten_lm_eval(results: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """``{"task/metric[/filter]": value}`` and the standard errors under the same keys (numbers only: "N/A" is
    dropped) from lm-eval's ``{"task": {"metric,filter": value, "metric_stderr,filter": value}}``."""
    metrics, stderr = {}, {}
    for task, values in results.items():
        for key, value in values.items():
            metric, comma, filter_name = key.partition(",")
            if not comma or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            is_stderr = metric.endswith("_stderr")
            name = f"{task}/{metric.removesuffix('_stderr')}" + ("" if filter_name == "none" else f"/{filter_name}")
            (stderr if is_stderr else metrics)[name] = float(value)
    return metrics, stderr


def _docs_hash(samples: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 over the evaluated documents' own hashes (lm-eval's ``doc_hash``), in document order."""
    ordered = sorted(samples, key=lambda sample: sample.get("doc_id", 0))
    return hashlib.sha256("\n".join(str(sample.get("doc_hash", "")) for sample in ordered).encode()).hexdigest()
