"""What the training child does for each job kind: spec → `frpo_core` job → metrics and the final model in the store.

This is where the service meets `frpo_core` (the runner around it only manages processes and leases). Each stage
translates its spec into a plain `frpo_core` description (`RLJob`, `SFTJob`), streams the trainer's logs into the
store through `StoreSink`, writes evaluation metrics at the step they measure, and records the final model. An
evaluate job runs benchmarks (`workers.capability`: `bench/<task>/<metric>`) and/or the safety evaluation.

Under `accelerate launch` (a spec's `gpu.num_gpus` > 1, workers.launch) every rank runs `work`; only rank 0 writes
metrics, events and artifacts (`is_main_process`), while all ranks train and evaluate (a sharded model needs them).

Which model a job starts from: a train job from `model` or, with `parent_id`, from that run's final model (e.g. a warm
start); a finetune job from its parent's model, or the parent's checkpoint at `parent_step` (or `model`); an evaluate
job from its run's model. The reference for every KL is the model the run started from, so an RL run's `eval/kl_*` is
the KL it moved in RL and a fine-tuning run's is its drift from the RL policy (docs/method.md §3, §7).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from store.db import make_engine, session_scope
from store.events import add_event
from store.leases import Attempt, attempt_scope
from store.metrics import record_artifact, write_points
from store.models import Run
from store.queries import checkpoint_at, final_model
from store.retry import retrying
from store.settings import get_settings
from store.specs import (
    HUB_ID,
    JOB_SPEC,
    TINY_MODEL,
    WARM_START_MODEL,
    EvalSpec,
    EvaluateSpec,
    FinetuneSpec,
    GpuBase,
    TrainSpec,
)
from store.specs.base import MAX_STEPS
from workers.checkpoints import attempt_dir
from workers.launch import is_main_process
from workers.phases import PhaseClock


def model_path(model: str, output_root: Path) -> str:
    """'tiny' is built once into <output_root>/models/tiny (atomically: a rename); 'toy-warm-start' is the shipped
    checkpoint, its digest checked (frpo_core.toy.warm_start); a hub id must be in the Hugging Face cache or
    downloadable now (:func:`require_hub_model`); anything else goes to TRL as is."""
    if model == WARM_START_MODEL:
        from frpo_core.toy.warm_start import shipped_warm_start

        return str(shipped_warm_start())
    if model != TINY_MODEL:
        if HUB_ID.match(model) and not Path(model).exists():
            require_hub_model(model)
        return model
    from frpo_core import build_tiny_model

    target = output_root / "models" / "tiny"
    if not (target / "config.json").is_file():
        staging = target.with_name(f".tiny-{uuid.uuid4().hex}")
        build_tiny_model(staging)
        try:
            staging.rename(target)
        except OSError:  # another worker built it first
            shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def require_hub_model(model: str) -> None:
    """Fetch a hub id's config (from the Hugging Face cache when it is there, or offline with HF_HUB_OFFLINE=1), so
    a model that cannot be had fails at once, naming the model and what to do, instead of transformers' message
    about connections deep inside a trainer. One line: a failed run's error is its log's last line."""
    from huggingface_hub.constants import HF_HUB_CACHE
    from transformers.utils import cached_file

    try:
        cached_file(model, "config.json")
    except OSError as error:
        raise RuntimeError(
            f"model {model!r} is not in this worker's Hugging Face cache ({HF_HUB_CACHE}) and could not be downloaded: "
            f"set HF_TOKEN if it is gated or private, or pre-download it on a machine with access "
            f"(hf download {model}) into the worker's HF_HOME ({type(error).__name__}: {' '.join(str(error).split())})"
        ) from error


def work(
    run_id: uuid.UUID,
    database_url: str,
    output_root: Path,
    resume: Path | None,
    attempt_number: int,
    clock: PhaseClock | None = None,
) -> None:
    """The child's work: run the job its spec describes, then record the final model (if it makes one) and where
    the time went (`clock`'s phases, workers.phases). Everything it writes is fenced by its attempt, and it trains in
    the attempt's own folder (workers.checkpoints)."""
    clock = clock or PhaseClock()
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6", category=FutureWarning)
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        run = session.get(Run, run_id)
        spec = JOB_SPEC.validate_python(run.spec)
        parent_model = _start_of(session, run)
        grandparent_model = _start_of(session, run.parent) if run.parent is not None else None
    attempt = Attempt(run_id, attempt_number)
    output_dir = attempt_dir(output_root, run_id, attempt_number)
    if isinstance(spec, TrainSpec):
        start = parent_model or model_path(spec.model, output_root)
        final, step = _train(spec, attempt, engine, output_dir, start, resume, clock)
    elif isinstance(spec, FinetuneSpec):
        start = parent_model or model_path(spec.model, output_root)
        final, step = _finetune(spec, attempt, engine, output_dir, start, resume, clock)
    else:
        final, step = None, 0
        with clock.phase("evaluation"):
            _evaluate(spec, attempt, engine, parent_model, grandparent_model, output_dir)
    if is_main_process():  # under accelerate launch, rank 0 alone writes to the store
        if final is not None:
            with clock.phase("save"):
                _record_final_model(engine, attempt, final, step)
        _reporter(engine, attempt)(0, clock.metrics(nested={"evaluation": "train"}))
    engine.dispose()


def _record_final_model(engine: Engine, attempt: Attempt, final: Path, step: int) -> None:
    from workers.sink import describe_model_dir

    size, digest = describe_model_dir(final)

    def record() -> None:
        with attempt_scope(engine, attempt) as session:
            record_artifact(session, attempt.run_id, "model", str(final), size, digest, step)

    retrying(record, get_settings().store_outage_seconds, f"recording the final model of run {attempt.run_id}")


def _start_of(session: Session, run: Run) -> str | None:
    """The model `run` starts from, if it starts from another run: the parent's checkpoint at the spec's
    `parent_step` (a point along the parent's run), else the parent's final model."""
    if run.parent_id is None:
        return None
    step = run.spec.get("parent_step")
    if step is None:
        artifact = final_model(session, run.parent_id)
        return artifact.path if artifact is not None else None
    artifact = checkpoint_at(session, run.parent_id, step)
    if artifact is None:
        raise RuntimeError(
            f"run {run.parent_id} kept no checkpoint at step {step}: start from a run whose spec lists the step in "
            "keep_checkpoints (a pipeline's finetune_at does so)"
        )
    return artifact.path


def _reporter(engine: Engine, attempt: Attempt):
    """Evaluation metrics straight into the store, at the step they were measured (fenced; retried through an
    outage of up to `store_outage_seconds`)."""

    def write(points: list[tuple[str, int, float]]) -> None:
        with attempt_scope(engine, attempt) as session:
            write_points(session, attempt.run_id, points)

    def report(step: int, metrics: dict[str, float]) -> None:
        points = [(key, step, value) for key, value in metrics.items()]
        retrying(lambda: write(points), get_settings().store_outage_seconds, f"evaluation of run {attempt.run_id}")

    return report


def _sample_keeper(engine: Engine, attempt: Attempt, spec: EvalSpec):
    """The judged answers behind each evaluation, into the store beside its metrics (fenced, retried as they are);
    with `eval.prompt_texts: hash`, each prompt as its hash only."""
    from store.samples import Sample, write_samples

    def keep(step: int, answers: list) -> None:
        samples = [Sample(**dataclasses.asdict(answer)) for answer in answers]

        def write() -> None:
            with attempt_scope(engine, attempt) as session:
                write_samples(session, attempt.run_id, step, samples, keep_prompts=spec.prompt_texts == "keep")

        retrying(write, get_settings().store_outage_seconds, f"evaluation samples of run {attempt.run_id}")

    return keep


def _load(path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, local_files_only=Path(path).is_dir()).eval()


def _safety_evaluation(
    spec: EvalSpec,
    engine: Engine,
    attempt: Attempt,
    tokenizer_path: str,
    reference: str | None,
    rl_generation: tuple[int, float] | None = None,
):
    """A safety evaluator on the spec's fixed prompt subsets, its judges and scorer recorded on the run
    (docs/method.md §6.10). Its sampled answers are `eval.sample_length` tokens long at `eval.temperature`, where unset
    as an RL run's own answers (`rl_generation`: its completion length and temperature), else `eval.max_new_tokens`
    tokens at temperature 1."""
    from transformers import AutoTokenizer

    from frpo_core.safety.evaluation import Sampling, evaluator_for_prompt_set
    from frpo_core.safety.judges import get_judge
    from frpo_core.safety.rewards import get_scorer

    judge = get_judge(spec.judge)
    scorer = get_scorer(spec.helpfulness) if spec.helpfulness else None
    strongreject_judge = get_judge(spec.strongreject_judge) if spec.strongreject_judge else None
    used = {"judge": f"{judge.name}@{judge.version}", "prompts": spec.prompts}
    if scorer is not None:
        used["helpfulness"] = f"{scorer.name}@{scorer.version}"
    if strongreject_judge is not None:
        used["strongreject_judge"] = f"{strongreject_judge.name}@{strongreject_judge.version}"
    sampling = None
    if spec.samples:
        rl_length, rl_temperature = rl_generation or (None, None)
        length = spec.sample_length or rl_length or spec.max_new_tokens
        temperature = spec.temperature or rl_temperature or 1.0
        sampling = Sampling(spec.samples, length, temperature, spec.seed)
        used["sampling"] = f"{spec.samples} answers a prompt, {length} tokens, temperature {temperature:g}"
    evaluator = evaluator_for_prompt_set(
        spec.prompts,
        judge=judge,
        tokenizer=AutoTokenizer.from_pretrained(tokenizer_path),
        n_harmful=spec.n_harmful,
        n_harmless=spec.n_harmless,
        seed=spec.seed,
        reference=_load(reference) if reference else None,
        max_new_tokens=spec.max_new_tokens,
        batch_size=spec.batch_size,
        scorer=scorer,
        strongreject=spec.strongreject,
        n_strongreject=spec.n_strongreject,
        strongreject_judge=strongreject_judge,
        harmless=spec.harmless_prompts,
        max_prompt_length=spec.max_prompt_length,
        sampling=sampling,
    )
    if is_main_process():
        with attempt_scope(engine, attempt) as session:
            message = "evaluation: " + ", ".join(f"{k} = {v}" for k, v in used.items())
            add_event(session, attempt.run_id, message, **used)
            _record_bound(session, attempt.run_id, "evaluation prompts", evaluator.prompt_record())
    return evaluator


def _callbacks(
    spec_eval: EvalSpec | None,
    engine: Engine,
    attempt: Attempt,
    start: str,
    reference: str | None,
    rl_generation: tuple[int, float] | None = None,
    clock: PhaseClock | None = None,
):
    """The store sink (rank 0 only: every rank logs, one writes), plus the in-loop safety evaluation (step 0, every
    `every` steps, the end) when asked: every rank evaluates, so sharded models can run it; rank 0 reports. An RL
    run gives its `rl_generation` (completion length, temperature), which its sampled measures default to. In one
    process the step-0 and final evaluations are remembered in the store and a step-0 evaluation an earlier run
    already made of the same weights is reused (workers.memo). The evaluations' time goes to `clock`'s "evaluation"
    phase."""
    from frpo_core.safety.evaluation import SafetyEvalCallback
    from workers.memo import StoreMemo
    from workers.sink import StoreSink

    outage = get_settings().store_outage_seconds
    callbacks = [StoreSink(engine, attempt, outage_seconds=outage)] if is_main_process() else []
    if spec_eval is not None:
        evaluator = _safety_evaluation(spec_eval, engine, attempt, start, reference, rl_generation)
        if clock is not None:
            evaluator.evaluate_in_full = clock.timed("evaluation", evaluator.evaluate_in_full)
        report, keep = _reporter(engine, attempt), _sample_keeper(engine, attempt, spec_eval)
        memo = (
            StoreMemo(engine, attempt, spec_eval.prompt_texts) if int(os.environ.get("WORLD_SIZE", "1")) == 1 else None
        )
        callbacks.append(SafetyEvalCallback(evaluator, spec_eval.every, report=report, keep=keep, memo=memo))
    return callbacks


def _close(callbacks) -> None:
    """Drain and stop the store sink, if this process has one."""
    from workers.sink import StoreSink

    for callback in callbacks:
        if isinstance(callback, StoreSink):
            callback.close()


def _train(
    spec: TrainSpec,
    attempt: Attempt,
    engine: Engine,
    output_dir: Path,
    start: str,
    resume: Path | None,
    clock: PhaseClock,
) -> tuple[Path, int]:
    """GRPO or FRPO from `start`, resuming from `resume` if given; the evaluation's KL is to `start` (the KL moved)."""
    return _run_rl(rl_job(spec, start, output_dir), spec.eval, attempt, engine, start, resume, clock)


SHARED_RL_FIELDS = (
    "learning_rate",
    "max_steps",
    "num_generations",
    "per_device_train_batch_size",
    "max_completion_length",
    "max_prompt_length",
    "overlong_prompts",
    "seed",
    "save_steps",
    "lora",
    "lora_r",
    "lora_alpha",
)
"""RLJob fields that a train spec and a downstream-RL finetune spec both carry, under the same names."""


def _shared_rl_fields(spec: TrainSpec | FinetuneSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in SHARED_RL_FIELDS}


def _gpu_options(gpu: GpuBase | None, options: type, **operator: Any):
    """A spec's `gpu` as frpo_core's `options` type (`GpuOptions` for RL, `GpuBaseOptions` for SFT), or None; its
    processes and DeepSpeed are the launcher's (workers.launch), not the trainer config's; `operator` adds what the
    operator's settings fix (:func:`_vllm_server`)."""
    return options(**gpu.model_dump(exclude={"num_gpus", "distributed"}), **operator) if gpu is not None else None


def _vllm_server() -> dict[str, Any]:
    """The vLLM server an RL job in server mode talks to: the operator's settings, never a spec's."""
    settings = get_settings()
    return {"vllm_server_host": settings.vllm_server_host, "vllm_server_port": settings.vllm_server_port}


def rl_job(spec: TrainSpec, start: str, output_dir: Path):
    """The spec as an `frpo_core.jobs.rl.RLJob` starting from `start`. The processes and DeepSpeed of `spec.gpu` are the
    launcher's (workers.launch); its vLLM, attention, bf16 and checkpointing settings go into the trainer's config."""
    from frpo_core.jobs.gpu import GpuOptions
    from frpo_core.jobs.rl import RLJob

    return RLJob(
        model_path=start,
        output_dir=output_dir,
        dataset=spec.dataset,
        rewards=spec.rewards,
        judge=spec.judge,
        helpfulness=spec.helpfulness,
        loss_type=spec.method,
        lamb=spec.lamb,
        beta=spec.beta,
        jackknife=spec.jackknife,
        baseline=spec.baseline,
        frpo_scale=spec.frpo_scale,
        frpo_clip=spec.frpo_clip,
        scale_rewards=spec.scale_rewards,
        save_at=tuple(spec.keep_checkpoints or ()),
        **_shared_rl_fields(spec),
        trust_remote_code=spec.trust_remote_code,
        math_levels=spec.math_levels,
        math_exclude=spec.decontaminate,
        gpu=_gpu_options(spec.gpu, GpuOptions, **_vllm_server()),
        report_to=tuple(spec.report_to),
        options=spec.trl.model_dump(),
    )


def _run_rl(
    job,
    spec_eval: EvalSpec | None,
    attempt: Attempt,
    engine: Engine,
    start: str,
    resume: Path | None,
    clock: PhaseClock,
):
    """Train an RLJob with the sink and the evaluation, recording its data and reward identities on the run (the
    math data's decontamination count as an event and a `decontaminated` tag, docs/method.md §6.10)."""
    from frpo_core.jobs.rewards import reward_identities
    from frpo_core.jobs.rl import build_rl_trainer, load_rl_prompts_of
    from frpo_core.jobs.sft import save_final

    with clock.phase("data"):
        prompts = load_rl_prompts_of(job)
    generation = (job.max_completion_length, float(job.options.get("temperature", 1.0)))  # TRL's default: 1
    with clock.phase("trainer"):
        callbacks = _callbacks(
            spec_eval, engine, attempt, start, reference=start, rl_generation=generation, clock=clock
        )
        trainer = build_rl_trainer(job, callbacks, prompts)
    if is_main_process():
        _record_inputs(engine, attempt, reward_identities(trainer.reward_funcs), prompts.record, prompts.bound)
    try:
        with clock.phase("train"):
            trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        _close(callbacks)
    with clock.phase("save"):
        return save_final(trainer, job.output_dir), trainer.state.global_step


def _record_inputs(engine: Engine, attempt: Attempt, rewards: dict[str, str], data: dict, bound: dict) -> None:
    """The rewards' scorers, the data and the prompts' length bound as events; the math data's decontamination also
    as a tag, where a chart's reader sees it (docs/method.md §6.10); the number of training processes when launched."""
    run_id = attempt.run_id
    with attempt_scope(engine, attempt) as session:
        add_event(session, run_id, "rewards: " + ", ".join(f"{k} = {v}" for k, v in rewards.items()), **rewards)
        add_event(session, run_id, "data: " + ", ".join(f"{k} = {v}" for k, v in data.items()), **data)
        _record_bound(session, run_id, "RL prompts", bound)
        _record_world(session, run_id)
        if data.get("decontaminated_against") is not None:
            run = session.get(Run, run_id)
            run.tags = {**run.tags, "decontaminated": data["removed"]}


def _record_bound(session: Session, run_id: uuid.UUID, what: str, bound: dict) -> None:
    """How many of `what` the prompt-length bound cut or dropped, as an event (a warning when it touched any)."""
    if not bound:
        return
    limit = bound["max_prompt_length"]
    if limit is None:
        add_event(session, run_id, f"{what}: no max_prompt_length, prompts not bounded", **bound)
        return
    touched = bound["truncated"] + bound["dropped"]
    message = (
        f"{what}: max_prompt_length = {limit} tokens; {bound['truncated']} truncated from the left, "
        f"{bound['dropped']} dropped"
    )
    add_event(session, run_id, message, level="warning" if touched else "info", **bound)


def _record_world(session: Session, run_id: uuid.UUID) -> None:
    """The number of training processes as an event, when the job runs under accelerate launch."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        add_event(session, run_id, f"training on {world} processes (accelerate launch)", world_size=world)


def _finetune(
    spec: FinetuneSpec,
    attempt: Attempt,
    engine: Engine,
    output_dir: Path,
    start: str,
    resume: Path | None,
    clock: PhaseClock,
) -> tuple[Path, int]:
    """SFT of `start` (the parent's model, or a base model), resuming from `resume` if given, evaluated at step 0,
    every `eval.every` steps and at the end; the reference for the KL is the model as it was when fine-tuning began
    (docs/method.md §6.11), also after a resume."""
    if spec.mode == "rl":
        return _downstream_rl(spec, attempt, engine, output_dir, start, resume, clock)
    from frpo_core.jobs.sft import build_sft_trainer, load_sft_data, save_final

    job = sft_job(spec, start, output_dir)
    with clock.phase("data"):
        data = load_sft_data(job)
    with clock.phase("trainer"):
        callbacks = _callbacks(spec.eval, engine, attempt, start, reference=start, clock=clock)
        trainer = build_sft_trainer(job, callbacks=callbacks, data=data)
    if is_main_process():
        with attempt_scope(engine, attempt) as session:
            add_event(session, attempt.run_id, f"sft masking: {data.masking} ({data.reason})", **data.record())
            _record_world(session, attempt.run_id)
            if spec.epochs is not None:
                _record_epoch_steps(session, attempt.run_id, spec, trainer)
    try:
        with clock.phase("train"):
            trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        _close(callbacks)
    with clock.phase("save"):
        return save_final(trainer, job.output_dir), trainer.state.global_step


def _record_epoch_steps(session: Session, run_id: uuid.UUID, spec: FinetuneSpec, trainer) -> None:
    """The steps a fine-tuning's `epochs` became (frpo_core.jobs.sft.epoch_steps), as an event and as the run's
    `finetune_steps` tag, which its charts and a resumed attempt's progress count against."""
    steps = trainer.args.max_steps
    if steps > MAX_STEPS:
        raise ValueError(f"epochs={spec.epochs} is {steps} steps, above the bound of {MAX_STEPS}: give fewer epochs")
    rows = len(trainer.train_dataset)
    message = (
        f"epochs {spec.epochs:g} = {steps} steps ({rows} examples, batch {spec.per_device_train_batch_size} × "
        f"{trainer.args.world_size} processes × {spec.gradient_accumulation_steps} accumulation)"
    )
    add_event(session, run_id, message, epochs=spec.epochs, steps=steps, examples=rows)
    run = session.get(Run, run_id)
    run.tags = {**run.tags, "finetune_steps": steps}


def sft_job(spec: FinetuneSpec, start: str, output_dir: Path):
    """The spec as an `frpo_core.jobs.sft.SFTJob` starting from `start`. The processes and DeepSpeed of `spec.gpu`
    are the launcher's (workers.launch); its attention, bf16 and checkpointing settings go into the trainer's config."""
    from frpo_core.jobs.gpu import GpuBaseOptions
    from frpo_core.jobs.sft import SFTJob

    return SFTJob(
        model_path=start,
        dataset=spec.dataset,
        output_dir=output_dir,
        learning_rate=spec.learning_rate,
        lr_scheduler_type=spec.lr_scheduler_type,
        warmup_ratio=spec.warmup_ratio,
        weight_decay=spec.weight_decay,
        max_steps=spec.max_steps,
        epochs=spec.epochs,
        per_device_train_batch_size=spec.per_device_train_batch_size,
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
        lora=spec.lora,
        lora_r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        max_length=spec.max_length,
        dataset_limit=spec.dataset_limit,
        seed=spec.seed,
        logging_steps=1,
        save_steps=spec.save_steps,
        max_grad_norm=spec.max_grad_norm,
        gpu=_gpu_options(spec.gpu, GpuBaseOptions),
        masking=spec.masking,
        report_to=tuple(spec.report_to),
        options=spec.sft.model_dump(),
    )


def _downstream_rl(
    spec: FinetuneSpec,
    attempt: Attempt,
    engine: Engine,
    output_dir: Path,
    start: str,
    resume: Path | None,
    clock: PhaseClock,
):
    """Downstream RL: GRPO of `start` on a downstream reward (e.g. GSM8K correctness), evaluated like an SFT."""
    from frpo_core.jobs.gpu import GpuOptions
    from frpo_core.jobs.rl import RLJob

    job = RLJob(
        model_path=start,
        output_dir=output_dir,
        dataset=spec.dataset,
        rewards=spec.rewards,
        loss_type="grpo",
        beta=spec.beta,
        **_shared_rl_fields(spec),
        gpu=_gpu_options(spec.gpu, GpuOptions),
        report_to=tuple(spec.report_to),
        options={
            "lr_scheduler_type": spec.lr_scheduler_type,
            "warmup_steps": spec.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
            "weight_decay": spec.weight_decay,
            "gradient_accumulation_steps": spec.gradient_accumulation_steps,
            "max_grad_norm": spec.max_grad_norm,
        },
    )
    return _run_rl(job, spec.eval, attempt, engine, start, resume, clock)


def _evaluate(
    spec: EvaluateSpec,
    attempt: Attempt,
    engine: Engine,
    source: str,
    reference: str | None,
    output_dir: Path,
) -> None:
    """One model, evaluated at step 0: its benchmarks (workers.capability) and, if asked, the safety evaluation with
    the KL against the model it was trained from. A LoRA adapter is merged first: benchmarks load a plain model."""
    from workers.capability import plain_model, run_benchmarks

    model = plain_model(source, output_dir, engine, attempt)
    if spec.benchmarks:
        run_benchmarks(spec, model, engine, attempt, output_dir)
    if spec.safety:
        evaluator = _safety_evaluation(spec.eval, engine, attempt, model, reference)
        evaluation = evaluator.evaluate_in_full(_load(model))
        _reporter(engine, attempt)(0, evaluation.metrics)
        _sample_keeper(engine, attempt, spec.eval)(0, evaluation.answers)
