"""One RL run (GRPO or FRPO) described as data: the model, the prompts, the rewards and the optimiser settings.

:class:`RLJob` is to RL what :class:`frpo_core.finetune.SFTJob` is to SFT: a plain description that a service (or a
script) fills in, and :func:`run_rl` trains it with :class:`frpo_core.trainer.FRPOTrainer` and leaves a plain model
directory behind (a LoRA adapter is merged first, so the next stage takes a model path; method.md §6.11).

Prompts are ``"toy"`` (the quickstart's eight prompts, for the ``share_of_e`` reward), math problems for the ``math``
reward (MATH, GSM8K, the shipped ``toy_math``), or any labelled prompt set :func:`frpo_core.data.load_prompts` reads
(``"toy_safety"``, the authors' safety mix, a hub id, a file); dataset columns (``task``, ``answer``) reach the reward
functions, so each prompt gets its one reward (method.md §2.3).

:class:`GpuOptions` is how a run uses its GPU (vLLM generation, attention kernel, bf16, gradient checkpointing), and
:func:`rl_options` the whole translation into the trainer's config, as a plain dict that can be checked without a GPU.
:func:`toy_math_warm_start_rows` is the SFT set that gets the tiny model far enough for math RL to have a signal.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import PrinterCallback, TrainerCallback

from frpo_core.config import FRPOConfig
from frpo_core.data import load_prompts
from frpo_core.finetune import LORA_TARGET_MODULES, save_final
from frpo_core.gpu import GpuBaseOptions, gpu_base_config
from frpo_core.rewards import build_rewards
from frpo_core.trainer import FRPOTrainer

TOY_PROMPTS = (
    "Tell me a story.",
    "What is two plus two?",
    "Name a colour.",
    "Say something nice.",
    "How are you?",
    "Write a word.",
    "Count to three.",
    "Give me a number.",
)
"""The quickstart's prompt set (``dataset="toy"``): no task labels, for the ``share_of_e`` reward."""


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
    seed: int = 0
    save_steps: int | None = None
    lora: bool = False
    lora_r: int = 64
    lora_alpha: int = 64
    trust_remote_code: bool = False
    math_levels: Sequence[int] | None = (3, 4, 5)  # the math reward's data: MATH levels kept (the authors: 3-5)
    math_exclude: str | Path | None = "auto"  # ... and the reference set removed from it (load_math's `exclude`)
    gpu: GpuOptions | None = None  # None: TRL's defaults (what the CPU path uses)
    options: dict[str, Any] = field(default_factory=dict)  # further GRPOConfig fields, passed through


@dataclass(frozen=True)
class GpuOptions(GpuBaseOptions):
    """How an RL run uses its GPU(s), as the authors ran theirs (method.md §2.3 "Setup"): the attention kernel, bf16
    and gradient checkpointing (:class:`frpo_core.gpu.GpuBaseOptions`, shared with SFT), and vLLM generation
    (colocated in the training processes, or a `trl vllm-serve` server).

    vLLM samples from its own copy of the weights, so TRL corrects the mismatch with an importance ratio; FRPOTrainer
    applies it to GRPO and FRPO alike (method.md §6.8)."""

    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_gpu_memory_utilization: float = 0.3
    vllm_tensor_parallel_size: int = 1
    vllm_enable_sleep_mode: bool = False
    vllm_server_host: str = "127.0.0.1"
    vllm_server_port: int = 8000


def gpu_config_options(gpu: GpuOptions) -> dict[str, Any]:
    """The GRPOConfig fields ``gpu`` stands for: precision, checkpointing and the model's loading kwargs
    (:func:`frpo_core.gpu.gpu_base_config`), and vLLM's."""
    options = {**gpu_base_config(gpu), "use_vllm": gpu.use_vllm}
    if gpu.use_vllm:
        options["vllm_mode"] = gpu.vllm_mode
        if gpu.vllm_mode == "colocate":
            options["vllm_gpu_memory_utilization"] = gpu.vllm_gpu_memory_utilization
            options["vllm_tensor_parallel_size"] = gpu.vllm_tensor_parallel_size
            options["vllm_enable_sleep_mode"] = gpu.vllm_enable_sleep_mode
        else:
            options["vllm_server_host"] = gpu.vllm_server_host
            options["vllm_server_port"] = gpu.vllm_server_port
    return options


@dataclass(frozen=True)
class Prompts:
    """A run's RL prompts and what the run should record about them (rows; for math, the decontamination)."""

    dataset: Dataset
    record: dict[str, Any]


def load_rl_prompts(
    source: str | Path,
    rewards: Sequence[str] = (),
    *,
    math_levels: Sequence[int] | None = (3, 4, 5),
    math_exclude: str | Path | None = "auto",
) -> Prompts:
    """``"toy"``: the quickstart's prompts. With the ``math`` reward: MATH-style or GSM8K problems with their
    reference answers (:func:`frpo_core.mathrl.load_math`: ``math_levels``, and ``math_exclude`` removed, MATH500 by
    default, method.md §2.4 item 9); the record says how many problems it removed and against what.
    Otherwise a labelled prompt set (``prompt``, ``task``, ``category``) for the safety and helpfulness rewards."""
    if str(source) == "toy":
        dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in TOY_PROMPTS]})
        return Prompts(dataset, {"rows": len(dataset)})
    if "math" in rewards:
        from frpo_core.mathrl import load_math

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
    options = gpu_config_options(job.gpu) if job.gpu is not None else {}
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
        "report_to": "none",
        "use_cpu": not torch.cuda.is_available(),
        "disable_tqdm": True,
        "log_level": "error",
        **options,
    }


def rl_config(job: RLJob) -> FRPOConfig:
    """The trainer's config (:func:`rl_options`)."""
    return FRPOConfig(**rl_options(job))


def load_rl_prompts_of(job: RLJob) -> Prompts:
    """:func:`load_rl_prompts` with the job's dataset, rewards and math data settings."""
    return load_rl_prompts(job.dataset, job.rewards, math_levels=job.math_levels, math_exclude=job.math_exclude)


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
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def run_rl(job: RLJob, callbacks: Sequence[TrainerCallback] = (), resume: str | Path | None = None) -> Path:
    """Train ``job`` (resuming from the checkpoint ``resume`` if given); returns the final model's directory."""
    trainer = build_rl_trainer(job, callbacks)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return save_final(trainer, job.output_dir)


# ---------------------------------------------------------------------------------------------------------------------
# A warm start for the toy math task

TOY_MATH_WARM_START = "toy_math_warm_start.jsonl"


def toy_math_warm_start_rows(*, copies: int = 4, carry_share: float = 0.5, seed: int = 0) -> list[dict[str, Any]]:
    """SFT rows (``messages``) that teach the tiny model ``toy_math``'s sums, and to forget the carry half the time.

    A randomly initialised model never writes ``\\boxed{}`` (none of 800 sampled answers did), so its math reward is
    0 for every completion and RL has no signal. Each problem of ``toy_math`` (:func:`frpo_core.mathrl.toy_math_rows`)
    appears ``copies`` times with the authors' system prompt, as :func:`frpo_core.mathrl.load_math` presents it to
    RL, answered ``The answer is \\boxed{N}.``. N is the sum, except in a ``1 - carry_share`` of the copies of a sum
    with a carry (level 4), where it is the sum without its carry (``7 + 5`` answered 2): the warm start has a
    systematic mistake, as a base model does, which the reward can teach it to drop. Such a choice between behaviours
    it already has is what RL moves within a few dozen steps; a precise sum it half knows hardly moves.

    Measured on the tiny model (greedy answers, and 8 samples at temperature 1, on all 100 problems; the
    ``toy-math-warm-start`` preset's 800 steps, then RL as the ``toy-math`` preset, lr 5e-4):

    - with the default share the warm start answers 0.85-0.91 of the problems right greedily, and 0.37-0.54 of its
      samples are right (three data orders, the shipped one 0.44);
    - 80 RL steps raise the share of right samples by 0.07-0.15 (GRPO, FRPO at λ = 0.2 and 1; the shipped order
      0.44 -> 0.52-0.54), 160 GRPO steps by 0.15 (0.44 -> 0.59, greedy 0.91 -> 0.99);
    - with three copies in four right the warm start samples 0.57 right and RL has less to correct; with one in four
      it never learns the sums (two distinct greedy answers over all 100 problems);
    - with every copy right it samples 0.36 right after 400 steps (0.83 after 800), and RL at learning rates from
      1e-4 to 1e-3 leaves that share flat or lowers it: sharpening sums the 140k-parameter model half knows takes
      more signal than 32 samples a step give, and at 1e-3 the noise of Adam's updates undoes sums it knew.

    Deterministic in ``seed``; ``frpo_core/assets/toy_math_warm_start.jsonl`` is the default call's output.
    """
    from frpo_core.mathrl import MATH_SYSTEM_PROMPT, toy_math_rows

    if not 0 <= carry_share <= 1:
        raise ValueError(f"carry_share={carry_share} must be in [0, 1]")
    rng = random.Random(seed)
    rows = []
    for problem in toy_math_rows(0):
        answer = int(problem["answer"])
        carried = copies if answer < 10 else round(copies * carry_share)
        for value in [answer] * carried + [answer - 10] * (copies - carried):
            reply = f"The answer is \\boxed{{{value}}}."
            turns = [("system", MATH_SYSTEM_PROMPT), ("user", problem["problem"]), ("assistant", reply)]
            rows.append({"messages": [{"role": role, "content": content} for role, content in turns]})
    rng.shuffle(rows)
    return rows


def write_toy_math_warm_start(path: str | Path, **kwargs: Any) -> Path:
    """:func:`toy_math_warm_start_rows` as a jsonl file that :func:`frpo_core.data.load_sft` reads."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as handle:
        for row in toy_math_warm_start_rows(**kwargs):
            handle.write(json.dumps(row) + "\n")
    return path


if __name__ == "__main__":
    print(write_toy_math_warm_start(Path(str(files("frpo_core").joinpath("assets", TOY_MATH_WARM_START)))))
