"""Run one job: claim it, train in a child process while holding the lease, record the outcome.

    python -m workers.runner <run_id>     # execute a queued job in the foreground, as the Celery task does

`execute` is a plain function (the Celery task only calls it), so it is tested without a broker.

Why a child process (and not a TrainerCallback that sets `control.should_training_stop`): a callback is consulted
only between optimiser steps, from inside the training loop; a step stuck in generation, a data loader, a hub
download or a deadlocked collective never reaches it, and GPU memory stays with the worker. Here the parent (the
Celery task) does no ML at all: it heartbeats the lease and watches `cancel_requested`, and the training runs in a
child started in its own session, i.e. its own process group. Cancelling sends SIGTERM and then SIGKILL to that whole
group, so data-loader workers, compile workers and anything else the trainer forked go with it, whatever they are
doing. Conversely the child dies with its parent (PR_SET_PDEATHSIG plus a parent watchdog): a worker killed with
SIGKILL leaves no orphan still writing metrics for a job that another worker is about to resume.

Recovery: a dead worker stops renewing; once the lease is in the past the recovery scan (`workers.tasks.recover`)
re-enqueues the run, the next claim counts attempt n+1, and training resumes from the newest complete `checkpoint-*`
in the run's output folder. The metric points up to that checkpoint are rewritten from the checkpoint's own
`trainer_state.json` and later steps are re-logged; both are upserts on (run, key, step), so the series has exactly
one point per step: no gaps, no duplicates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, select

from store.db import make_engine, session_scope
from store.events import add_event
from store.leases import cancel_abandoned, claim, finish, is_cancel_requested, renew, set_progress, waiting_children
from store.metrics import points_from_log, record_artifact, write_points
from store.models import Run, RunStatus
from store.queries import final_model
from store.settings import Settings, get_settings
from store.specs import JOB_SPEC, TINY_MODEL, EvalSpec, EvaluateSpec, FinetuneSpec, TrainSpec
from workers.celery_app import enqueue

log = logging.getLogger(__name__)

Send = Callable[[uuid.UUID, str], None]

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
TERMINATE_GRACE_SECONDS = 5.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint (a crash mid-save leaves one without trainer_state.json: skipped)."""
    if not output_dir.is_dir():
        return None
    found = []
    for path in output_dir.iterdir():
        match = CHECKPOINT.match(path.name)
        if match and path.is_dir() and (path / "trainer_state.json").is_file():
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def checkpoint_points(checkpoint: Path) -> list[tuple[str, int, float]]:
    """The metric points a checkpoint's trainer state logged (the history up to its step)."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    points = []
    for entry in state.get("log_history", []):
        if "step" in entry:
            points.extend(points_from_log(entry, int(entry["step"])))
    return points


def execute(
    run_id: uuid.UUID, settings: Settings | None = None, engine: Engine | None = None, send: Send = enqueue
) -> str:
    """Run job `run_id` to its end if this call can claim it; returns the run's status afterwards.

    A run that is finished, or running elsewhere under a live lease, is left alone (a redelivered message never runs
    a job twice): the call returns its current status at once.
    """
    settings = settings or get_settings()
    own_engine = engine is None
    engine = engine or make_engine(settings.database_url)
    worker = worker_name()
    try:
        with session_scope(engine) as session:
            run = claim(session, run_id, worker, settings.lease_seconds)
        if run is None:
            with session_scope(engine) as session:
                cancel_abandoned(session, run_id)
                status = session.scalar(select(Run.status).where(Run.id == run_id))
            log.info("run %s not claimed (status %s): nothing to do", run_id, status)
            return str(status.value if status else "missing")
        try:
            return _run_claimed(run, worker, settings, engine, send)
        except Exception as error:
            with session_scope(engine) as session:
                add_event(session, run_id, "worker error", level="error", traceback=traceback.format_exc())
                finish(session, run_id, worker, RunStatus.failed, error=f"{type(error).__name__}: {error}")
            return RunStatus.failed.value
    finally:
        if own_engine:
            engine.dispose()


def _run_claimed(run: Run, worker: str, settings: Settings, engine: Engine, send: Send) -> str:
    spec = JOB_SPEC.validate_python(run.spec)
    output_dir = settings.output_root / str(run.id)
    output_dir.mkdir(parents=True, exist_ok=True)
    # RL resumes from its newest checkpoint; a fine-tuning or evaluation job whose worker died starts over (its
    # metric points are upserts, so the rerun overwrites them rather than duplicating them).
    resume = latest_checkpoint(output_dir) if spec.kind == "train" else None
    if resume is not None:
        step = int(CHECKPOINT.match(resume.name).group(1))
        with session_scope(engine) as session:
            write_points(session, run.id, checkpoint_points(resume))
            set_progress(session, run.id, step / spec.max_steps, None)
            add_event(session, run.id, f"resumed from {resume.name}", checkpoint=str(resume), step=step)

    command = [sys.executable, "-m", "workers.runner", "--train", str(run.id)]
    command += ["--output-root", str(settings.output_root), "--parent-pid", str(os.getpid())]
    if resume is not None:
        command += ["--resume", str(resume)]
    log_path = output_dir / "train.log"
    with open(log_path, "ab") as log_file:
        # the database URL goes by environment, not argv: `ps` would show a password
        env = {**os.environ, "FRPO_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
        child = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        outcome = _watch(child, run.id, worker, settings, engine)
    finally:
        _kill_tree(child)  # also reaps anything the child left behind in its group

    if outcome == "lost":
        with session_scope(engine) as session:
            add_event(session, run.id, f"{worker} lost its lease: training stopped", level="warning")
            status = session.scalar(select(Run.status).where(Run.id == run.id))
        return str(status.value)
    if outcome == "cancelled":
        return _end(engine, run.id, worker, RunStatus.cancelled)
    if child.returncode == 0:
        return _end(engine, run.id, worker, RunStatus.succeeded, send=send)
    tail = _tail(log_path)
    last = next((line for line in reversed(tail.splitlines()) if line.strip()), "")
    with session_scope(engine) as session:
        add_event(session, run.id, "training failed", level="error", returncode=child.returncode, log_tail=tail)
    return _end(engine, run.id, worker, RunStatus.failed, last or f"training exited with {child.returncode}")


def _end(
    engine: Engine, run_id: uuid.UUID, worker: str, status: RunStatus, error: str | None = None, send: Send = enqueue
) -> str:
    """Finish the run if it is still ours, and start the stages waiting for it; returns the run's status afterwards.

    A success enqueues the queued runs that start from this one (a pipeline's next stage) after the commit, so the
    worker that takes them finds their parent succeeded; a failure or cancellation has cancelled them (`finish`).
    A lost message is not lost work: the recovery scan re-sends queued runs whose parent has succeeded.
    """
    with session_scope(engine) as session:
        if not finish(session, run_id, worker, status, error=error):
            return str(session.scalar(select(Run.status).where(Run.id == run_id)).value)
        children = [(child.id, child.queue) for child in waiting_children(session, run_id)]
    for child_id, queue in children if status == RunStatus.succeeded else []:
        try:
            send(child_id, queue)
        except Exception:
            log.exception("could not enqueue run %s after its parent %s succeeded", child_id, run_id)
    return status.value


def _watch(child: subprocess.Popen, run_id: uuid.UUID, worker: str, settings: Settings, engine: Engine) -> str:
    """Heartbeat until the child exits: renew the lease every heartbeat, check for cancellation every second."""
    poll = min(1.0, settings.heartbeat_seconds)
    next_renew = time.monotonic() + settings.heartbeat_seconds
    while True:
        try:
            child.wait(timeout=poll)
            return "exited"
        except subprocess.TimeoutExpired:
            pass
        try:
            with session_scope(engine) as session:
                if time.monotonic() >= next_renew:
                    if not renew(session, run_id, worker, settings.lease_seconds):
                        return "lost"
                    next_renew = time.monotonic() + settings.heartbeat_seconds
                cancel = is_cancel_requested(session, run_id)
        except Exception:  # a database hiccup: keep training; the lease outlives several missed heartbeats
            log.exception("heartbeat of run %s failed", run_id)
            continue
        if cancel:
            with session_scope(engine) as session:
                add_event(session, run_id, "cancellation requested: stopping the training process group")
            return "cancelled"


def _kill_tree(child: subprocess.Popen) -> None:
    """SIGTERM the child's whole process group, then SIGKILL whatever is still there after a grace period."""
    for sig, grace in ((signal.SIGTERM, TERMINATE_GRACE_SECONDS), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=grace)
        if child.returncode is not None and not _group_alive(child.pid):
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, size: int = 4000) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(path.stat().st_size - size, 0))
        return handle.read().decode("utf-8", "replace")


# --- the training child ------------------------------------------------------------------------------------------
def _die_with_parent(parent: int) -> None:
    """Exit as soon as the parent (the worker) is gone: no orphan keeps training a job someone else resumes."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)

    def watchdog() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watchdog, name="parent-watchdog", daemon=True).start()


def model_path(model: str, output_root: Path) -> str:
    """'tiny' is built once into <output_root>/models/tiny (atomically: a rename); anything else goes to TRL as is."""
    if model != TINY_MODEL:
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


def work(run_id: uuid.UUID, database_url: str, output_root: Path, resume: Path | None) -> None:
    """The child's work: run the job its spec describes, then record the final model (if it makes one)."""
    import warnings

    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6", category=FutureWarning)
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        run = session.get(Run, run_id)
        spec = JOB_SPEC.validate_python(run.spec)
        source = _model_of(session, run.parent_id)  # the model a finetune/evaluate job starts from
        reference = _model_of(session, session.get(Run, run.parent_id).parent_id) if spec.kind == "evaluate" else None
    output_dir = output_root / str(run_id)
    if isinstance(spec, TrainSpec):
        final, step = _train(spec, run_id, engine, output_dir, output_root, resume)
    elif isinstance(spec, FinetuneSpec):
        final, step = _finetune(spec, run_id, engine, output_dir, source)
    else:
        final, step = None, 0
        _evaluate(spec, run_id, engine, source, reference)
    if final is not None:
        from workers.sink import describe_model_dir

        size, digest = describe_model_dir(final)
        with session_scope(engine) as session:
            record_artifact(session, run_id, "model", str(final), size, digest, step)
    engine.dispose()


def _model_of(session, run_id: uuid.UUID | None) -> str | None:
    artifact = final_model(session, run_id) if run_id is not None else None
    return artifact.path if artifact is not None else None


def _train(
    spec: TrainSpec, run_id: uuid.UUID, engine: Engine, output_dir: Path, output_root: Path, resume: Path | None
) -> tuple[Path, int]:
    """GRPO or FRPO on TRL, resuming from `resume` if given."""
    from frpo_core.quickstart import toy_config, toy_trainer
    from workers.sink import StoreSink

    trl = dict(spec.trl)
    if spec.trust_remote_code:
        trl["model_init_kwargs"] = {**trl.get("model_init_kwargs", {}), "trust_remote_code": True}
    config = toy_config(
        output_dir,
        loss_type=spec.method,
        lamb=spec.lamb,
        beta=spec.beta,
        seed=spec.seed,
        jackknife=spec.jackknife,
        baseline=spec.baseline,
        frpo_scale=spec.frpo_scale,
        frpo_clip=spec.frpo_clip,
        scale_rewards=spec.scale_rewards,
        learning_rate=spec.learning_rate,
        max_steps=spec.max_steps,
        num_generations=spec.num_generations,
        per_device_train_batch_size=spec.per_device_train_batch_size,
        max_completion_length=spec.max_completion_length,
        save_strategy="steps",
        save_steps=spec.save_steps,
        **trl,
    )
    trainer = toy_trainer(model_path(spec.model, output_root), config)
    sink = StoreSink(engine, run_id)
    trainer.add_callback(sink)
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        sink.close()
    final = output_dir / "final"
    trainer.save_model(str(final))
    return final, trainer.state.global_step


def _safety_evaluator(spec: EvalSpec, tokenizer, reference=None):
    from frpo_core.evals import evaluator_for_prompt_set
    from frpo_core.judges import get_judge

    return evaluator_for_prompt_set(
        spec.prompts,
        judge=get_judge(spec.judge),
        tokenizer=tokenizer,
        n_harmful=spec.n_harmful,
        n_harmless=spec.n_harmless,
        seed=spec.seed,
        reference=reference,
        max_new_tokens=spec.max_new_tokens,
    )


def _reporter(engine: Engine, run_id: uuid.UUID):
    """Evaluation metrics straight into the store, at the step they were measured."""

    def report(step: int, metrics: dict[str, float]) -> None:
        write_points(engine, run_id, [(key, step, value) for key, value in metrics.items()])

    return report


def _finetune(spec: FinetuneSpec, run_id: uuid.UUID, engine: Engine, output_dir: Path, source: str) -> tuple[Path, int]:
    """Downstream SFT of the parent's model, evaluated at step 0 and every `eval.every` steps; the reference for the
    KL is the parent's model as it was when fine-tuning began (method.md §6.11)."""
    from transformers import AutoTokenizer

    from frpo_core.evals import SafetyEvalCallback
    from frpo_core.finetune import SFTJob, run_sft
    from workers.sink import StoreSink

    job = SFTJob(
        model_path=source,
        dataset=spec.dataset,
        output_dir=output_dir,
        learning_rate=spec.learning_rate,
        max_steps=spec.max_steps,
        per_device_train_batch_size=spec.per_device_train_batch_size,
        lora=spec.lora,
        lora_r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        max_length=spec.max_length,
        seed=spec.seed,
        logging_steps=1,
        save_steps=spec.save_steps,
    )
    evaluator = _safety_evaluator(spec.eval, AutoTokenizer.from_pretrained(source, local_files_only=True))
    sink = StoreSink(engine, run_id)
    evaluation = SafetyEvalCallback(evaluator, spec.eval.every, report=_reporter(engine, run_id))
    try:
        final = run_sft(job, callbacks=[sink, evaluation])
    finally:
        sink.close()
    return final, spec.max_steps


def _evaluate(spec: EvaluateSpec, run_id: uuid.UUID, engine: Engine, source: str, reference: str | None) -> None:
    """The safety evaluation of one model, at step 0; KL against the model it was trained from, if known."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load(path: str):
        return AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()

    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    evaluator = _safety_evaluator(spec.eval, tokenizer, reference=load(reference) if reference else None)
    _reporter(engine, run_id)(0, evaluator.evaluate(load(source)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", type=uuid.UUID)
    parser.add_argument("--train", action="store_true", help=argparse.SUPPRESS)  # the child, started by execute
    parser.add_argument("--output-root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--resume", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.train:
        _die_with_parent(args.parent_pid or os.getppid())
        work(args.run_id, os.environ["FRPO_DATABASE_URL"], args.output_root, args.resume)
    else:
        print(execute(args.run_id))


if __name__ == "__main__":
    main()
