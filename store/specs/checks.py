"""What a spec's shape cannot say, checked against this server's settings before anything is stored."""

from __future__ import annotations

from pathlib import Path

from store.settings import Settings
from store.specs.base import HUB_ID, QUICKSTART_DATASET, SpecError
from store.specs.evaluate import EvaluateSpec, EvaluateStage
from store.specs.finetune import FinetuneSpec, FinetuneStage
from store.specs.gpu import GpuBase
from store.specs.pipeline import PipelineSpec
from store.specs.safety_eval import EvalSpec
from store.specs.train import TrainSpec


def check_runnable(spec: TrainSpec | FinetuneSpec | EvaluateSpec | PipelineSpec, settings: Settings) -> None:
    """What the shape cannot say: local paths (models, data, judge and reward models, benchmarks) confined to the
    model roots, trust_remote_code only if the server allows it, and GPU-only options (vLLM, flash-attn, DeepSpeed,
    several GPUs) only on the gpu queue. (Whether a parent run exists and has finished is the store's to say:
    `store.queries.check_lineage`.)"""
    if isinstance(spec, PipelineSpec):
        check_runnable(spec.train, settings)
        _check_finetune(spec.finetune, settings, prefix="finetune.")
        if spec.evaluation is not None and (spec.evaluate or spec.evaluate_before):
            _check_evaluation(spec.evaluation, spec.finetune.queue, settings, prefix="evaluation.")
        return
    if isinstance(spec, TrainSpec):
        if spec.trust_remote_code and not settings.allow_trust_remote_code:
            raise SpecError("trust_remote_code", "this server does not allow it (FRPO_ALLOW_TRUST_REMOTE_CODE=false)")
        _check_source("model", spec.model, settings)
        if spec.dataset != QUICKSTART_DATASET:
            _check_source("dataset", spec.dataset, settings)
        if "math" in spec.rewards and spec.decontaminate not in (None, "auto"):
            _check_source("decontaminate", spec.decontaminate, settings)
        _check_judge("judge", spec.judge, settings)
        _check_source("helpfulness", spec.helpfulness, settings)
        _check_eval(spec.eval, settings)
        if spec.queue == "cpu":
            _refuse_on_cpu(spec.gpu)
    elif isinstance(spec, FinetuneStage):
        if isinstance(spec, FinetuneSpec) and spec.model is not None:
            _check_source("model", spec.model, settings)
        _check_finetune(spec, settings)
    else:
        _check_evaluation(spec, spec.queue, settings)


def _refuse_on_cpu(gpu: GpuBase | None, prefix: str = "") -> None:
    """GPU-only options on the cpu queue: refused now, naming the first GPU-only field of `gpu`, rather than failing
    in a CPU worker."""
    refused = [f"gpu.{name}" for name in (gpu.gpu_only() if gpu is not None else [])]
    if refused:
        raise SpecError(f"{prefix}{refused[0]}", "needs a GPU worker: set queue to 'gpu' (the cpu queue has no CUDA)")


def _check_evaluation(spec: EvaluateStage, queue: str, settings: Settings, prefix: str = "") -> None:
    if spec.safety:
        _check_eval(spec.eval, settings, prefix=f"{prefix}eval.")
    for i, benchmark in enumerate(spec.benchmarks):  # a name, or a task folder or code set's file ('..' is a path)
        _check_source(f"{prefix}benchmarks.{i}", benchmark, settings, hub_ok=False)
    if queue == "cpu" and spec.backend == "vllm":
        raise SpecError(f"{prefix}backend", "vLLM needs a GPU worker: use 'hf' or 'auto', or set queue to 'gpu'")


def _check_finetune(spec: FinetuneStage, settings: Settings, prefix: str = "") -> None:
    _check_source(f"{prefix}dataset", spec.dataset, settings)
    _check_eval(spec.eval, settings, prefix=f"{prefix}eval.")
    if spec.queue == "cpu":
        _refuse_on_cpu(spec.gpu, prefix=prefix)


def _check_eval(spec: EvalSpec | None, settings: Settings, prefix: str = "eval.") -> None:
    if spec is None:
        return
    _check_source(f"{prefix}prompts", spec.prompts, settings)
    _check_judge(f"{prefix}judge", spec.judge, settings)
    for field in ("harmless_prompts", "helpfulness", "strongreject"):
        if getattr(spec, field) is not None:
            _check_source(f"{prefix}{field}", getattr(spec, field), settings)
    if spec.strongreject_judge is not None:
        _check_judge(f"{prefix}strongreject_judge", spec.strongreject_judge, settings)


def _check_judge(field: str, judge: str, settings: Settings) -> None:
    """A judge is a name, or 'kind:<model>' where the model is a hub id or a path under a model root."""
    _, _, model = judge.partition(":")
    if model:  # '..' or '~' has no slash but is a path: _check_source tells names from paths
        _check_source(field, model, settings)


def _check_source(field: str, value: str, settings: Settings, hub_ok: bool = True) -> None:
    """A shipped name (no slash, not an existing path), a hub id (owner/name, not an existing path), or a path under
    a model root."""
    path = Path(value).expanduser()
    if "/" not in value and not path.exists():
        return  # a name: 'tiny', a shipped data set; unknown names fail when the job starts, naming the choices
    if hub_ok and HUB_ID.match(value.split(":", 1)[0]) and not path.exists():
        return  # a hub id: loaded by name (the worker may still find no hub access)
    if not any(path.resolve().is_relative_to(root) for root in settings.model_roots):
        roots = ", ".join(str(r) for r in settings.model_roots)
        raise SpecError(field, f"{value!r} is neither a name, a hub id, nor a path under a model root ({roots})")
