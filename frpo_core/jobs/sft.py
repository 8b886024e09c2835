"""Downstream supervised fine-tuning (SFT) of an RL-trained policy: the "attack" that FRPO must be robust to.

The paper fine-tunes the GRPO- or FRPO-trained policy on benign data (Alpaca, GSM8K, code) and measures how much
safety or math skill survives (docs/method.md §3). :func:`run_sft` does this with TRL's ``SFTTrainer``, either as full
fine-tuning (the paper's Alpaca and GSM8K runs) or with LoRA (its code SFT), and always leaves a *plain* model
directory behind: a LoRA run is merged before saving, so the next stage (evaluation, another SFT) takes a model
path, as the authors' scripts do (docs/method.md §6.11). :func:`merge_lora` does the same for a LoRA-trained RL policy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from datasets import Dataset
from jinja2 import TemplateError
from peft import LoraConfig, PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase, Trainer, TrainerCallback
from trl import SFTConfig, SFTTrainer
from trl.chat_template_utils import get_training_chat_template, has_generation_markers

from frpo_core.data.conversations import load_sft
from frpo_core.jobs.gpu import GpuBaseOptions, config_without_gpu, gpu_base_config
from frpo_core.jobs.trackers import report_to_setting

LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "gate_proj", "down_proj"]
"""Where LoRA adapters go: every attention and MLP projection, as in the authors' runs (docs/method.md §2.3)."""

FINAL_DIR = "final"
"""Subdirectory of ``SFTJob.output_dir`` that holds the finished (merged) model and tokenizer."""

Masking = Literal["auto", "assistant", "completion"]
MASKINGS = ("auto", "assistant", "completion")
"""How SFT keeps the loss on the answer. ``"assistant"``: TRL's ``assistant_only_loss``, which needs the chat template's
``{% generation %}`` markers (the tiny model has them; most real templates, Mistral's and SmolLM's among them, do not).
``"completion"``: TRL's prompt-completion format with ``completion_only_loss``: the conversation up to the answer is
the prompt (rendered with the generation prompt), the answer the completion, so any chat template works, as in the
authors' code SFT. ``"auto"``: ``"assistant"`` where the template has the markers, else ``"completion"``."""


@dataclass
class SFTJob:
    """One downstream SFT run. Defaults suit the tiny offline model on a CPU; the paper's settings are in
    docs/method.md §3.

    ``dataset`` is any source :func:`frpo_core.data.conversations.load_sft` accepts (a shipped name, a hub id, a local
    file).
    ``eval_every`` holds out ``eval_holdout`` examples (the authors held out 50) and evaluates on them every
    ``eval_every`` steps and at step 0, so callbacks' ``on_evaluate`` hooks see the start of SFT as well; ``None``
    disables evaluation. ``save_steps`` writes intermediate checkpoints; ``None`` saves only the final model.
    """

    model_path: str | Path
    dataset: str | Path = "benign_sft"
    output_dir: str | Path = "var/sft"
    learning_rate: float = 1e-5
    max_steps: int | None = 100
    epochs: float | None = None  # instead of max_steps (then None): passes over the data, made steps (epoch_steps)
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    lr_scheduler_type: str = "constant"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    max_length: int | None = 1024
    dataset_limit: int | None = None
    eval_holdout: int = 50
    seed: int = 0
    logging_steps: int = 10
    save_steps: int | None = None
    eval_every: int | None = None
    max_grad_norm: float | None = None  # gradient clipping; None: TRL's default (1.0); the authors' code SFT: 0.3
    gpu: GpuBaseOptions | None = None  # attention, bf16, checkpointing; None: TRL's defaults with fp32 weights
    report_to: tuple[str, ...] = ()  # outside trackers (wandb, mlflow, trackio, tensorboard) beside the caller's own
    options: dict[str, Any] = field(default_factory=dict)  # further SFTConfig fields, passed through (they win)
    masking: Masking = "auto"  # how the loss stays on the answer (MASKINGS)


@dataclass(frozen=True)
class SFTData:
    """A run's SFT data as the trainer takes it, the tokenizer that renders it, and the masking its loss uses."""

    train: Dataset
    eval: Dataset | None
    tokenizer: PreTrainedTokenizerBase
    masking: str  # "assistant" or "completion"
    reason: str

    def record(self) -> dict[str, Any]:
        """What a run records about its loss (an event on the run): the masking used, and why."""
        return {"masking": self.masking, "why": self.reason}


def choose_masking(tokenizer: PreTrainedTokenizerBase, requested: Masking = "auto") -> tuple[str, str]:
    """The masking SFT uses with this tokenizer's chat template (:data:`MASKINGS`), and why. Refused only where it
    cannot work: no chat template at all, or ``"assistant"`` on a template without ``{% generation %}`` markers that
    TRL cannot patch in."""
    if requested not in MASKINGS:
        raise ValueError(f"masking={requested!r} must be one of {MASKINGS}")
    template = tokenizer.chat_template
    if not template:
        raise ValueError(
            "the model's tokenizer has no chat template, and SFT renders conversations through it: use an "
            "instruction-tuned (chat) model, or add a chat_template to its tokenizer_config.json"
        )
    markers = has_generation_markers(template)
    if requested == "completion" or (requested == "auto" and not markers):
        why = "asked for" if requested == "completion" else "the chat template has no {% generation %} markers"
        return "completion", f"{why}: loss on the answer as a prompt-completion pair (completion_only_loss)"
    if markers:
        return "assistant", "the chat template marks the answer with {% generation %}: assistant_only_loss"
    try:
        get_training_chat_template(tokenizer)
    except ValueError as error:
        raise ValueError(
            "masking='assistant' needs {% generation %} markers in the chat template, which this one lacks and TRL "
            "cannot add: use masking='completion' (or 'auto'), which keeps the loss on the answer without them"
        ) from error
    return "assistant", "asked for: TRL swaps in its training version of this chat template (assistant_only_loss)"


def as_prompt_completion(dataset: Dataset) -> Dataset:
    """``messages`` conversations as TRL's conversational prompt-completion pairs: every turn before the last is the
    prompt, the last (the assistant's answer) the completion."""

    def split(row: dict[str, Any]) -> dict[str, Any]:
        messages = row["messages"]
        if len(messages) < 2 or messages[-1]["role"] != "assistant":
            roles = [message["role"] for message in messages]
            raise ValueError(
                f"an SFT conversation with roles {roles} does not end in an assistant answer after a prompt; "
                "masking='completion' trains on that last answer: give each row a user turn and the answer"
            )
        return {"prompt": messages[:-1], "completion": messages[-1:]}

    return dataset.map(split, remove_columns=["messages"])


def fit_template(dataset: Dataset, tokenizer: PreTrainedTokenizerBase) -> Dataset:
    """``dataset`` as the chat template can render it. Some templates refuse a system turn (Mistral-7B-Instruct's
    raises unless roles alternate user/assistant); an *empty* system turn (the code SFT's) says nothing, so it is
    dropped there. Anything else the template refuses is an error naming the fix."""
    if not len(dataset) or _renders(tokenizer, dataset[0]["messages"]):
        return dataset
    without = dataset.map(lambda row: {"messages": _without_empty_system(row["messages"])})
    if _renders(tokenizer, without[0]["messages"]):
        return without
    raise ValueError(
        "the model's chat template refuses this SFT data's conversations (roles "
        f"{[message['role'] for message in dataset[0]['messages']]}): give the data the turns the template accepts "
        "(e.g. no system turn for a template that allows only user/assistant), or another chat template"
    )


def _renders(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> bool:
    try:
        tokenizer.apply_chat_template(messages, tokenize=False)
    except TemplateError:
        return False
    return True


def _without_empty_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return [message for message in messages if message["role"] != "system" or message["content"].strip()]


def load_sft_data(job: SFTJob) -> SFTData:
    """The job's data (:func:`frpo_core.data.conversations.load_sft`), fitted to the model's chat template, in the
    form its masking needs (:func:`choose_masking`), with the evaluation holdout split off."""
    tokenizer = AutoTokenizer.from_pretrained(job.model_path)
    masking, reason = choose_masking(tokenizer, job.masking)
    dataset = fit_template(load_sft(job.dataset, limit=job.dataset_limit), tokenizer)
    if masking == "completion":
        dataset = as_prompt_completion(dataset)
    train, evaluation = split_eval(dataset, job)
    return SFTData(train, evaluation, tokenizer, masking, reason)


def sft_config(job: SFTJob, masking: str = "assistant") -> SFTConfig:
    """The ``SFTConfig`` for ``job``: loss on the answer only, no external reporting, CPU when no CUDA.

    With ``masking="assistant"``, ``assistant_only_loss`` trains exactly the tokens inside the chat template's
    ``{% generation %}`` block (the answer and its end-of-turn token); with ``"completion"``, ``completion_only_loss``
    trains the completion of prompt-completion data (the answer and the template's end of turn), whatever the
    template (:data:`MASKINGS`). Either way SFT teaches answering, not reproducing user prompts. The model is loaded
    by the trainer from ``model_init_kwargs``: fp32 weights, or with ``job.gpu`` its attention kernel and bf16
    weights (:func:`frpo_core.jobs.gpu.gpu_base_config`, as for RL), so that under DeepSpeed ZeRO-3 it loads sharded.
    ``job.options`` (packing, optimiser, NEFTune, …) go in last.
    """
    if not 0 <= job.warmup_ratio < 1:
        raise ValueError(f"warmup_ratio={job.warmup_ratio} must be in [0, 1)")
    if (job.max_steps is None) == (job.epochs is None):
        raise ValueError(f"give exactly one of max_steps ({job.max_steps}) and epochs ({job.epochs}), the other None")
    evaluate = job.eval_every is not None
    options = gpu_base_config(job.gpu) if job.gpu is not None else config_without_gpu()
    options["model_init_kwargs"] = {"dtype": "float32", **options.get("model_init_kwargs", {})}
    if job.max_grad_norm is not None:
        options["max_grad_norm"] = job.max_grad_norm
    options.update(job.options)
    return SFTConfig(
        output_dir=str(job.output_dir),
        learning_rate=job.learning_rate,
        max_steps=job.max_steps if job.max_steps is not None else -1,  # -1: transformers counts num_train_epochs
        num_train_epochs=job.epochs if job.epochs is not None else 1.0,
        per_device_train_batch_size=job.per_device_train_batch_size,
        per_device_eval_batch_size=job.per_device_train_batch_size,
        gradient_accumulation_steps=job.gradient_accumulation_steps,
        lr_scheduler_type=job.lr_scheduler_type,
        warmup_steps=job.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
        weight_decay=job.weight_decay,
        max_length=job.max_length,
        assistant_only_loss=masking == "assistant",
        completion_only_loss=masking == "completion",
        seed=job.seed,
        data_seed=job.seed,
        logging_steps=job.logging_steps,
        save_strategy="steps" if job.save_steps else "no",
        save_steps=job.save_steps or 500,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=job.eval_every,
        eval_on_start=evaluate,
        report_to=report_to_setting(job.report_to),
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
        **options,
    )


def lora_config(job: SFTJob) -> LoraConfig:
    """LoRA on every projection (docs/method.md §2.3); the caller merges it into the base model at the end."""
    return LoraConfig(
        r=job.lora_r,
        lora_alpha=job.lora_alpha,
        lora_dropout=job.lora_dropout,
        target_modules=LORA_TARGET_MODULES,
        task_type="CAUSAL_LM",
    )


def split_eval(dataset: Dataset, job: SFTJob) -> tuple[Dataset, Dataset | None]:
    """Hold out the last ``eval_holdout`` rows for evaluation when ``job.eval_every`` is set (a fixed set,
    docs/method.md §6.10)."""
    if job.eval_every is None:
        return dataset, None
    if not 0 < job.eval_holdout < len(dataset):
        raise ValueError(f"eval_holdout={job.eval_holdout} must be in 1..{len(dataset) - 1} when eval_every is set")
    cut = len(dataset) - job.eval_holdout
    return dataset.select(range(cut)), dataset.select(range(cut, len(dataset)))


def build_sft_trainer(
    job: SFTJob, callbacks: Sequence[TrainerCallback] = (), data: SFTData | None = None
) -> SFTTrainer:
    """An ``SFTTrainer`` for ``job``, ready to ``train()``: the model, tokenizer and data loaded, LoRA applied if asked.
    ``data`` defaults to :func:`load_sft_data` of the job (a caller that records the masking loads it first).

    Exposed separately from :func:`run_sft` so that callers (and tests) can inspect the tokenised data and the
    collated batches before training.
    """
    data = data or load_sft_data(job)
    trainer = SFTTrainer(
        model=str(job.model_path),  # loaded with the config's model_init_kwargs (sft_config)
        args=sft_config(job, data.masking),
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=data.tokenizer,
        peft_config=lora_config(job) if job.lora else None,
        callbacks=list(callbacks),
    )
    if job.epochs is not None:
        # fixed now, not inside train(): the caller records the run's length in steps before it starts, and its
        # progress, evaluation and checkpoints are all counted in them
        trainer.args.max_steps = epoch_steps(trainer, job.epochs)
    return trainer


def epoch_steps(trainer: Trainer, epochs: float) -> int:
    """The optimiser steps ``epochs`` passes over the trainer's data take, counted as transformers counts an epoch
    (``Trainer.set_initial_training_values``): this process's batches of the prepared data (after the dataset's limit,
    the held-out split and any packing), over the gradient accumulation, each rounded up."""
    args = trainer.args
    batch = args.per_device_train_batch_size * args.world_size
    rows = len(trainer.train_dataset)
    batches = rows // batch if args.dataloader_drop_last else math.ceil(rows / batch)
    return math.ceil(epochs * max(math.ceil(batches / args.gradient_accumulation_steps), 1))


def run_sft(job: SFTJob, callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Run downstream SFT and return the directory of the final model (``output_dir/final``), a plain model path.

    ``callbacks`` are ``TrainerCallback`` instances passed to the trainer as they are, so a service can stream the
    logged metrics or run its own evaluations (refusal rate, KL to the pre-SFT policy) at evaluation steps. With
    ``job.lora`` the adapter is merged into the base weights before saving (docs/method.md §6.11).
    """
    trainer = build_sft_trainer(job, callbacks)
    trainer.train()
    return save_final(trainer, job.output_dir)


def save_final(trainer: Trainer, output_dir: str | Path) -> Path:
    """Save the trained model as a plain model directory (``output_dir/final``) with its tokenizer; a LoRA adapter
    is merged into its base first, so the next stage takes a model path (docs/method.md §6.11)."""
    final_dir = Path(output_dir) / FINAL_DIR
    if not isinstance(trainer.model, PeftModel):
        trainer.save_model(str(final_dir))  # saves model and tokenizer, on the main process only
    elif trainer.is_world_process_zero():
        trainer.model.merge_and_unload().save_pretrained(final_dir)
        trainer.processing_class.save_pretrained(final_dir)
    return final_dir


def merge_lora(adapter_dir: str | Path, output_dir: str | Path, base_model_path: str | Path | None = None) -> Path:
    """Merge a saved LoRA adapter into its base model and save a plain model (with tokenizer) to ``output_dir``.

    A LoRA-trained RL policy must be merged before full-parameter downstream SFT, and it is the merged model that is
    the reference for KL during that SFT (docs/method.md §6.11). The base model is the one recorded in the adapter's
    config unless ``base_model_path`` overrides it; the tokenizer comes from the adapter directory when it holds one,
    else from the base model.
    """
    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    base_path = base_model_path or _adapter_base(adapter_dir)
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").exists() else base_path
    merged.save_pretrained(output_dir)
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(output_dir)
    return output_dir


def _adapter_base(adapter_dir: Path) -> str:
    base = LoraConfig.from_pretrained(adapter_dir).base_model_name_or_path
    if not base:
        raise ValueError(f"adapter_dir={str(adapter_dir)!r} names no base model; pass base_model_path")
    return base
