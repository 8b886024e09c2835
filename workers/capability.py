"""Benchmark evaluation of one model for an `evaluate` job: lm-eval tasks and EvalPlus-style code sets
(docs/method.md §3).

The paper's math setting is judged on MATH500 (`minerva_math500`) and MBPP+ / HumanEval+ after downstream code SFT,
and a pipeline with `evaluate_before` measures the same before it, so the drop is visible. Every metric is written at
step 0 as `bench/<task>/<metric>` (its standard error as `bench/<task>/<metric>_stderr`), the per-sample outputs go
to a JSON-lines artifact in the run's folder, and the task versions, dataset hashes, package versions and generation
settings to an event, so two evaluations can be compared honestly (product.md: every run records what it used).
lm-eval's data is checked before the model loads: a worker without network runs offline when everything is cached, and
fails at once with `BenchmarkDataMissing` (what to download, and where the cache goes) when something is not.
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from store.events import add_event
from store.leases import Attempt, attempt_scope
from store.metrics import record_artifact, write_points
from store.specs import CODE_BENCHMARKS, EvaluateStage

SHIPPED_CODE_SETS = {"toy_humaneval": "toy_humaneval.jsonl"}
"""HumanEval-format sets shipped in frpo_core/assets, by name (the tiny model's offline code benchmark)."""

SAMPLES_FILE = "benchmark_samples.jsonl"
SAMPLES_KIND = "benchmark_samples"


def is_code_benchmark(name: str) -> bool:
    """EvalPlus's sets by name, a shipped HumanEval-format set, or a JSON-lines file; anything else is lm-eval's."""
    return name in CODE_BENCHMARKS or name in SHIPPED_CODE_SETS or name.endswith((".jsonl", ".jsonl.gz"))


def code_source(name: str) -> str:
    """What :func:`frpo_core.capability.coding.run_evalplus` loads for a code benchmark (a shipped set's file path)."""
    if name in SHIPPED_CODE_SETS:
        return str(files("frpo_core").joinpath("assets", SHIPPED_CODE_SETS[name]))
    return name


def resolve_backend(backend: str) -> str:
    """`"auto"`: vLLM when it is installed and a GPU is present (the authors' choice), else transformers."""
    if backend != "auto":
        return backend
    import torch

    return "vllm" if torch.cuda.is_available() and find_spec("vllm") is not None else "hf"


def plain_model(source: str, output_dir: Path, engine: Engine, attempt: Attempt) -> str:
    """`source`, or, when it is a LoRA adapter, the adapter merged into its base (`output_dir/merged`): benchmarks
    and judges load a plain model. RL and SFT runs here already leave merged models (docs/method.md §6.11)."""
    if not (Path(source) / "adapter_config.json").is_file():
        return source
    from frpo_core.jobs.sft import merge_lora

    merged = merge_lora(source, output_dir / "merged")
    with attempt_scope(engine, attempt) as session:
        add_event(session, attempt.run_id, f"merged the LoRA adapter {source} into its base model", adapter=source)
    return str(merged)


def run_benchmarks(
    spec: EvaluateStage, model: str, engine: Engine, attempt: Attempt, output_dir: Path
) -> dict[str, float]:
    """Run `spec.benchmarks` on `model` and record their metrics, samples and settings on the attempt's run; returns
    the metrics as written (`bench/…` keys)."""
    from frpo_core.capability.coding import run_evalplus
    from frpo_core.capability.harness import run_lm_eval
    from workers.sink import sha256_file

    backend = resolve_backend(spec.backend)
    results = []
    tasks = [name for name in spec.benchmarks if not is_code_benchmark(name)]
    if tasks:
        gen_kwargs = {"do_sample": False, "temperature": 0.0}  # greedy, as the authors' MATH500 runs
        if spec.max_new_tokens is not None:
            gen_kwargs["max_gen_toks"] = spec.max_new_tokens
        results.append(
            run_lm_eval(
                model,
                tasks,
                backend=backend,
                limit=spec.limit,
                batch_size=spec.batch_size,
                system_prompt=spec.system_prompt,
                gen_kwargs=gen_kwargs,
            )
        )
    for name in (name for name in spec.benchmarks if is_code_benchmark(name)):
        options: dict[str, Any] = {"max_new_tokens": spec.max_new_tokens} if spec.max_new_tokens else {}
        released = name in CODE_BENCHMARKS or name in SHIPPED_CODE_SETS
        results.append(
            run_evalplus(
                model,
                code_source(name),
                name=name if released else None,
                backend=backend,
                batch_size=spec.batch_size,
                system_prompt=spec.code_system_prompt,
                limit=spec.limit,
                scorer=spec.code_scorer,
                **options,
            )
        )
    points = bench_points(results)
    samples = write_samples(results, output_dir / SAMPLES_FILE)
    run_id = attempt.run_id
    with attempt_scope(engine, attempt) as session:
        write_points(session, run_id, points)
        record_artifact(session, run_id, SAMPLES_KIND, str(samples), samples.stat().st_size, sha256_file(samples), 0)
        add_event(session, run_id, describe(results), benchmarks=[provenance(result) for result in results])
    return {key: value for key, _, value in points}


def bench_points(results: list[Any]) -> list[tuple[str, int, float]]:
    """`bench/<task>/<metric>` and `bench/<task>/<metric>_stderr` at step 0, from BenchmarkResults."""
    points = []
    for result in results:
        points += [(f"bench/{key}", 0, value) for key, value in result.metrics.items()]
        points += [(f"bench/{key}_stderr", 0, value) for key, value in result.stderr.items()]
    return points


def write_samples(results: list[Any], path: Path) -> Path:
    """Every per-sample output as one JSON line (suite, task, then lm-eval's or EvalPlus's own record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for result in results:
            for task, rows in result.samples.items():
                for row in rows:
                    record = {"suite": result.suite, "task": task, **row}
                    handle.write(json.dumps(record, default=str) + "\n")
    return path


def provenance(result: Any) -> dict[str, Any]:
    """What makes an evaluation comparable with another: versions, data hashes, sizes, generation settings, and
    for code sets the scorer (EvalPlus's evaluator or the problems' tests)."""
    return {
        "suite": result.suite,
        "task_versions": result.task_versions,
        "dataset_hashes": result.dataset_hashes,
        "n_samples": result.n_samples,
        "package_versions": result.package_versions,
        "generation": result.generation,
        "scorer": result.scorer,
        "seconds": round(result.seconds, 2),
    }


def describe(results: list[Any]) -> str:
    """One line for the run's log: each suite's tasks with their sizes, and the scorer where one is named."""
    parts = [
        f"{result.suite}: "
        + ", ".join(f"{task} ({n})" for task, n in result.n_samples.items())
        + (f" scored by {result.scorer}" if result.scorer else "")
        for result in results
    ]
    return "benchmarks: " + "; ".join(parts)
