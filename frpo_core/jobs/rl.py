"""One RL run (GRPO or FRPO) described as data: the model, the prompts, the rewards and the optimiser settings.

:class:`RLJob` is to RL what :class:`frpo_core.jobs.sft.SFTJob` is to SFT: a plain description that a service (or a
script) fills in, and :func:`run_rl` trains it with :class:`frpo_core.trainer.FRPOTrainer` and leaves a plain model
directory behind (a LoRA adapter is merged first, so the next stage takes a model path; docs/method.md §6.11).

Prompts are ``"toy"`` (the quickstart's eight prompts, for the ``share_of_e`` reward), math problems for the ``math``
reward (MATH, GSM8K, the shipped ``toy_math``), or any labelled prompt set :func:`frpo_core.safety.prompts.load_prompts`
reads (``"toy_safety"``, the authors' safety mix, a hub id, a file); dataset columns (``task``, ``answer``) reach the
reward functions, so each prompt gets its one reward (docs/method.md §2.3).

:func:`rl_options` is the whole translation into the trainer's config (the GPU's part from
:class:`frpo_core.jobs.gpu.GpuOptions`), as a plain dict that can be checked without a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PrinterCallback, TrainerCallback

from frpo_core.config import FRPOConfig
from frpo_core.data.prompt_length import Overlong, bound_prompts
from frpo_core.jobs.gpu import GpuOptions, config_without_gpu, gpu_config_options
from frpo_core.jobs.rewards import build_rewards
from frpo_core.jobs.sft import LORA_TARGET_MODULES, save_final
from frpo_core.jobs.trackers import report_to_setting
from frpo_core.math.data import load_math
from frpo_core.safety.prompts import load_prompts
from frpo_core.toy.quickstart import prompt_dataset
from frpo_core.trainer import FRPOTrainer


@dataclass
class RLJob:
    """One GRPO or FRPO run. Defaults suit the tiny offline model on a CPU (32 completions of ≤ 16 tokens a step)."""

    model_path: str | Path
    output_dir: str | Path = "var/rl"
    dataset: str | Path = "toy"
    rewards: Sequence[str] = ("share_of_e",)
    judge: str = "refusal-matcher"
    helpfulness: str = "answered"
    loss_type: str = "frpo"
    lamb: float = 1.0
    beta: float = 0.0
    jackknife: bool = True
    baseline: bool = True
    frpo_scale: str = "authors"
    frpo_clip: str = "authors"
    scale_rewards: str = "none"
    learning_rate: float = 3e-3
    max_steps: int = 40
    num_generations: int = 8
    per_device_train_batch_size: int = 32
    max_completion_length: int = 16
    max_prompt_length: int | None = 1024  # tokens after the chat template; the authors' bound; None: unbounded
    overlong_prompts: Overlong = "truncate"  # ... longer prompts cut from the left, or "drop"ped
    seed: int = 0
    save_steps: int | None = None
    save_at: Sequence[int] = ()  # also checkpoint at these steps (a later stage starts from them: SaveAtSteps)
    lora: bool = False
    lora_r: int = 64
    lora_alpha: int = 64
    trust_remote_code: bool = False
    math_levels: Sequence[int] | None = (3, 4, 5)  # the math reward's data: MATH levels kept (the authors: 3-5)
    math_exclude: str | Path | None = "auto"  # ... and the reference set removed from it (load_math's `exclude`)
    gpu: GpuOptions | None = None  # None: TRL's defaults (what the CPU path uses)
    report_to: tuple[str, ...] = ()  # outside trackers (wandb, mlflow, trackio, tensorboard) beside the caller's own
    options: dict[str, Any] = field(default_factory=dict)  # further GRPOConfig fields, passed through


@dataclass(frozen=True)
class Prompts:
    """A run's RL prompts and what the run should record about them (rows; for math, the decontamination; the
    prompt-length bound and what it cut, in ``bound``)."""

    dataset: Dataset
    record: dict[str, Any]
    bound: dict[str, Any] = field(default_factory=dict)


def load_rl_prompts(
    source: str | Path,
    rewards: Sequence[str] = (),
    *,
    math_levels: Sequence[int] | None = (3, 4, 5),
    math_exclude: str | Path | None = "auto",
) -> Prompts:
    """``"toy"``: the quickstart's prompts. With the ``math`` reward: MATH-style or GSM8K problems with their
    reference answers (:func:`frpo_core.math.data.load_math`: ``math_levels``, and ``math_exclude`` removed, MATH500 by
    default, docs/method.md §2.4 item 9); the record says how many problems it removed and against what.
    Otherwise a labelled prompt set (``prompt``, ``task``, ``category``) for the safety and helpfulness rewards."""
    if str(source) == "toy":
        dataset = prompt_dataset()
        return Prompts(dataset, {"rows": len(dataset)})
    if "math" in rewards:
        math = load_math(source, levels=math_levels, exclude=math_exclude)
        record = {"rows": len(math.dataset), "decontaminated_against": math.reference, "removed": math.removed}
        return Prompts(math.dataset, record)
    dataset = load_prompts(source)
    return Prompts(dataset, {"rows": len(dataset)})


def rl_options(job: RLJob) -> dict[str, Any]:
    """The trainer's config as keyword arguments: the job's fields, its GPU options (:func:`gpu_config_options`),
    quiet logging every step, the CPU when there is no CUDA, and the pass-through ``options`` last (they win).

    A plain dict, so that the translation can be checked without building the config (with ``use_vllm`` the
    trainer, not the config, needs vLLM installed)."""
    options = gpu_config_options(job.gpu) if job.gpu is not None else config_without_gpu()
    init_kwargs = {**options.pop("model_init_kwargs", {}), **job.options.get("model_init_kwargs", {})}
    if job.trust_remote_code:
        init_kwargs["trust_remote_code"] = True
    options.update({key: value for key, value in job.options.items() if key != "model_init_kwargs"})
    if init_kwargs:
        options["model_init_kwargs"] = init_kwargs
    return {
        "output_dir": str(job.output_dir),
        "loss_type": job.loss_type,
        "lamb": job.lamb,
        "beta": job.beta,
        "jackknife": job.jackknife,
        "baseline": job.baseline,
        "frpo_scale": job.frpo_scale,
        "frpo_clip": job.frpo_clip,
        "scale_rewards": job.scale_rewards,
        "learning_rate": job.learning_rate,
        "max_steps": job.max_steps,
        "num_generations": job.num_generations,
        "per_device_train_batch_size": job.per_device_train_batch_size,
        "max_completion_length": job.max_completion_length,
        "seed": job.seed,
        "save_strategy": "steps" if job.save_steps else "no",
        "save_steps": job.save_steps or 500,
        "logging_steps": 1,
        "report_to": report_to_setting(job.report_to),
        "use_cpu": not torch.cuda.is_available(),
        "disable_tqdm": True,
        "log_level": "error",
        **options,
    }


def rl_config(job: RLJob) -> FRPOConfig:
    """The trainer's config (:func:`rl_options`)."""
    return FRPOConfig(**rl_options(job))


def load_rl_prompts_of(job: RLJob) -> Prompts:
    """:func:`load_rl_prompts` with the job's dataset, rewards and math data settings, bounded to the job's
    ``max_prompt_length`` tokens with the model's own tokenizer (:func:`bound_rl_prompts`)."""
    prompts = load_rl_prompts(job.dataset, job.rewards, math_levels=job.math_levels, math_exclude=job.math_exclude)
    if job.max_prompt_length is None:
        return bound_rl_prompts(prompts, None, None)
    tokenizer = AutoTokenizer.from_pretrained(job.model_path, trust_remote_code=job.trust_remote_code)
    return bound_rl_prompts(prompts, tokenizer, job.max_prompt_length, job.overlong_prompts)


def bound_rl_prompts(
    prompts: Prompts,
    tokenizer: PreTrainedTokenizerBase | None,
    max_prompt_length: int | None,
    overlong: Overlong = "truncate",
) -> Prompts:
    """``prompts`` within ``max_prompt_length`` tokens after the chat template (:func:`bound_prompts`): TRL 1.16's
    GRPO has no such bound, and one long prompt makes its step many times slower (or out of memory on a GPU).
    ``bound`` says what the bound was and how many prompts it cut or dropped, so the run can show it."""
    bounded = bound_prompts(prompts.dataset, tokenizer, max_prompt_length, overlong)
    return Prompts(bounded.dataset, prompts.record, bounded.record())


def build_rl_trainer(
    job: RLJob, callbacks: Sequence[TrainerCallback] = (), prompts: Prompts | None = None
) -> FRPOTrainer:
    """A trainer for ``job``, ready to ``train()``, printing nothing per step (the caller's callbacks see the logs).
    ``prompts`` defaults to :func:`load_rl_prompts_of` the job."""
    peft_config = None
    if job.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=job.lora_r, lora_alpha=job.lora_alpha, target_modules=LORA_TARGET_MODULES, task_type="CAUSAL_LM"
        )
    trainer = FRPOTrainer(
        model=str(job.model_path),
        reward_funcs=build_rewards(job.rewards, judge=job.judge, helpfulness=job.helpfulness),
        args=rl_config(job),
        train_dataset=(prompts or load_rl_prompts_of(job)).dataset,
        peft_config=peft_config,
        callbacks=[*callbacks, *([SaveAtSteps(job.save_at)] if job.save_at else [])],
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


class SaveAtSteps(TrainerCallback):
    """Checkpoint at the given steps as well as every ``save_steps``: points along one run that later stages start
    from (e.g. fine-tuning from GRPO's policy at steps 60, 120 and 180, each a point of its frontier:
    docs/method.md §7). The trainer saves whenever a callback sets ``should_save``, whatever its save strategy."""

    def __init__(self, steps: Sequence[int]) -> None:
        self.steps = frozenset(steps)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in self.steps:
            control.should_save = True


def run_rl(job: RLJob, callbacks: Sequence[TrainerCallback] = (), resume: str | Path | None = None) -> Path:
    """Train ``job`` (resuming from the checkpoint ``resume`` if given); returns the final model's directory."""
    trainer = build_rl_trainer(job, callbacks)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return save_final(trainer, job.output_dir)
