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
SIGKILL leaves no orphan still writing metrics for a job that another worker is about to resume. A CPU job's child is
forked from the worker's template process (workers.template), which has the ML stack imported already, with the same
guarantees (own session, death with this process, the job's log and environment); where there is no template, or for
a GPU job, it is spawned (`python -m workers.runner --train`). Either way it records where its time went
(workers.phases).

Recovery: a dead worker stops renewing; once the lease is in the past the recovery scan (`workers.tasks.recover`)
re-enqueues the run, the next claim counts attempt n+1, and training resumes from the newest `checkpoint-*` that
loads, over the folders of every earlier attempt (each attempt trains in its own, workers.checkpoints). The metric
points up to that checkpoint are rewritten from the checkpoint's own `trainer_state.json` and later steps are
re-logged; both are upserts on (run, key, step), so the series has exactly one point per step: no gaps, no
duplicates. A job whose worker died on `max_attempts` attempts is failed instead (`store.leases.fail_exhausted`).

Fencing: everything the worker and its child write carries the attempt (`store.leases.attempt_scope`), so a worker
that lost the run while still alive has its writes refused (`AttemptSuperseded`) and stops. A worker that cannot
renew its lease for the lease's length (the database unreachable, say) kills its child itself: by then another worker
may have taken the run over. Shorter database outages are ridden out: the final status, the resume's points and the
child's writes retry with backoff for up to `store_outage_seconds` (store.retry).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine, select

from store.db import make_engine, session_scope
from store.events import add_event
from store.leases import (
    Attempt,
    AttemptSuperseded,
    attempt_scope,
    cancel_abandoned,
    claim,
    fail_exhausted,
    finish,
    is_cancel_requested,
    renew,
    set_progress,
    waiting_children,
)
from store.metrics import write_points
from store.models import Run, RunStatus
from store.retry import retrying
from store.settings import Settings, get_settings
from store.specs import JOB_SPEC, JobSpec
from workers.celery_app import enqueue
from workers.checkpoints import attempt_dir, checkpoint_points, checkpoint_problem, checkpoint_step, checkpoints
from workers.launch import child_command, die_with_parent
from workers.phases import PhaseClock, process_age
from workers.stages import work
from workers.template import SOCKET_ENV, TemplateChild, fork_child, preload

log = logging.getLogger(__name__)

Send = Callable[[uuid.UUID, str], None]

TERMINATE_GRACE_SECONDS = 5.0
SUPERSEDED_EXIT = 75  # the child's exit status when another attempt took its run over (it stopped on a refused write)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def resume_point(engine: Engine, attempt: Attempt, run_dir: Path) -> Path | None:
    """The newest checkpoint of any earlier attempt that loads; each one skipped on the way (cut short by a kill or a
    full disk) is a warning event naming what is wrong with it."""
    for checkpoint in checkpoints(run_dir):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        with attempt_scope(engine, attempt) as session:
            add_event(
                session,
                attempt.run_id,
                f"skipped {checkpoint.parent.name}/{checkpoint.name}: {problem}",
                level="warning",
                checkpoint=str(checkpoint),
            )
    return None


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
            run = claim(session, run_id, worker, settings.lease_seconds, settings.max_attempts)
        if run is None:
            with session_scope(engine) as session:
                cancel_abandoned(session, run_id)
                fail_exhausted(session, settings.max_attempts, run_id)
                status = session.scalar(select(Run.status).where(Run.id == run_id))
            log.info("run %s not claimed (status %s): nothing to do", run_id, status)
            return str(status.value if status else "missing")
        attempt = Attempt(run.id, run.attempts)
        try:
            return _run_claimed(run, attempt, worker, settings, engine, send)
        except AttemptSuperseded:
            return _stopped(engine, attempt, worker, "another attempt owns the run")
        except Exception as error:
            return _failed(engine, attempt, worker, error)
    finally:
        if own_engine:
            engine.dispose()


def _failed(engine: Engine, attempt: Attempt, worker: str, error: Exception) -> str:
    """End the run failed after an error in the worker itself, if this attempt still owns it. Where even that cannot
    be written (the database gone for longer than the outage allowance), the run stays running: its lease expires
    and the recovery scan hands it to the next attempt, which resumes from the last checkpoint."""
    try:
        with attempt_scope(engine, attempt) as session:
            add_event(session, attempt.run_id, "worker error", level="error", traceback=traceback.format_exc())
            message = f"{type(error).__name__}: {error}"
            finish(session, attempt.run_id, worker, RunStatus.failed, error=message, attempt=attempt.number)
        return RunStatus.failed.value
    except AttemptSuperseded:
        return _stopped(engine, attempt, worker, "another attempt owns the run")
    except Exception:
        log.exception("run %s: could not record the worker error %r", attempt.run_id, error)
        return "unknown"


def _run_claimed(run: Run, attempt: Attempt, worker: str, settings: Settings, engine: Engine, send: Send) -> str:
    spec = JOB_SPEC.validate_python(run.spec)
    output_dir = settings.output_root / str(run.id)
    attempt_dir(settings.output_root, run.id, attempt.number).mkdir(parents=True, exist_ok=True)
    # RL and fine-tuning resume from their newest checkpoint that loads; an evaluation whose worker died starts over
    # (its metric points are upserts, so the rerun overwrites them rather than duplicating them).
    resume = resume_point(engine, attempt, output_dir) if spec.kind in ("train", "finetune") else None
    if resume is not None:
        step = checkpoint_step(resume)

        def restore() -> None:
            with attempt_scope(engine, attempt) as session:
                write_points(session, run.id, checkpoint_points(resume))
                total = spec.max_steps or session.get(Run, run.id).tags["finetune_steps"]  # epochs: what they became
                set_progress(session, run.id, step / total, None)
                message = f"resumed from {resume.parent.name}/{resume.name}"
                add_event(session, run.id, message, checkpoint=str(resume), step=step)

        retrying(restore, settings.store_outage_seconds, f"resuming run {run.id}")

    # one process, or `accelerate launch` with one per GPU when the spec's `gpu` asks for several (workers.launch)
    command = child_command(run.id, spec, settings.output_root, resume, os.getpid(), attempt=attempt.number)
    log_path = output_dir / "train.log"
    with open(log_path, "ab") as log_file:
        # the database URL goes by environment, not argv: `ps` would show a password
        env = {**os.environ, "FRPO_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
        env.pop(SOCKET_ENV, None)
        child = _start_child(command, spec, env, log_file, run.id, attempt, settings.output_root, resume)
    try:
        outcome = _watch(child, attempt, worker, settings, engine)
    finally:
        _kill_tree(child)  # also reaps anything the child left behind in its group

    if outcome == "lost":
        return _stopped(engine, attempt, worker, "it lost its lease")
    if outcome == "cancelled":
        return _end(engine, attempt, worker, settings, RunStatus.cancelled)
    if child.returncode == SUPERSEDED_EXIT:
        return _stopped(engine, attempt, worker, "its training process had a write refused")
    if child.returncode == 0:
        return _end(engine, attempt, worker, settings, RunStatus.succeeded, send=send)
    tail = _tail(log_path)
    last = next((line for line in reversed(tail.splitlines()) if line.strip()), "")

    def record_failure() -> None:
        with attempt_scope(engine, attempt) as session:
            add_event(session, run.id, "training failed", level="error", returncode=child.returncode, log_tail=tail)

    retrying(record_failure, settings.store_outage_seconds, f"recording the failure of run {run.id}")
    error = last or f"training exited with {child.returncode}"
    return _end(engine, attempt, worker, settings, RunStatus.failed, error)


def _start_child(
    command: list[str],
    spec: JobSpec,
    env: dict[str, str],
    log_file: BinaryIO,
    run_id: uuid.UUID,
    attempt: Attempt,
    output_root: Path,
    resume: Path | None,
) -> subprocess.Popen | TemplateChild:
    """The training child: forked from the worker's template (workers.template) where the worker has one and the job
    runs on the CPU, else spawned as `command` in a session of its own. GPU jobs are always spawned: their trainers
    start vLLM engines, NCCL and DeepSpeed process trees that read the environment and probe CUDA as they import,
    which a template shared by every job must never do; and their fixed cost is small beside their steps."""
    template = os.environ.get(SOCKET_ENV)
    if template and getattr(spec, "gpu", None) is None:
        request = {
            "run_id": str(run_id),
            "attempt": attempt.number,
            "output_root": str(output_root),
            "resume": str(resume) if resume else None,
        }
        child = fork_child(template, command[2:], request, env, log_file)
        if isinstance(child, TemplateChild):
            return child
        log.warning("run %s: spawning its training child: %s", run_id, child)
    return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stopped(engine: Engine, attempt: Attempt, worker: str, why: str) -> str:
    """This attempt stopped because another owns the run (or may: its lease ran out); returns the run's status,
    "unknown" while the database is unreachable. The event says which attempt stopped; it is the one write a
    superseded attempt makes, and it changes nothing another attempt wrote."""
    log.warning("run %s: attempt %d on %s stopped: %s", attempt.run_id, attempt.number, worker, why)
    try:
        with session_scope(engine) as session:
            message = f"attempt {attempt.number} on {worker} stopped: {why}"
            add_event(session, attempt.run_id, message, level="warning", worker=worker, attempt=attempt.number)
            return str(session.scalar(select(Run.status).where(Run.id == attempt.run_id)).value)
    except Exception:
        log.exception("could not record that attempt %d of run %s stopped", attempt.number, attempt.run_id)
        return "unknown"


def _end(
    engine: Engine,
    attempt: Attempt,
    worker: str,
    settings: Settings,
    status: RunStatus,
    error: str | None = None,
    send: Send = enqueue,
) -> str:
    """Finish the run if this attempt still owns it, and start the stages waiting for it; returns the run's status
    afterwards. Retried through a database outage of up to `store_outage_seconds`: a child that exits while the
    database is away does not lose its attempt.

    A success enqueues the queued runs that start from this one (a pipeline's next stage) after the commit, so the
    worker that takes them finds their parent succeeded; a failure or cancellation has cancelled them (`finish`).
    A lost message is not lost work: the recovery scan re-sends queued runs whose parent has succeeded.
    """
    run_id = attempt.run_id

    def record() -> tuple[str, list[tuple[uuid.UUID, str]]]:
        with session_scope(engine) as session:
            if not finish(session, run_id, worker, status, error=error, attempt=attempt.number):
                return str(session.scalar(select(Run.status).where(Run.id == run_id)).value), []
            return status.value, [(child.id, child.queue) for child in waiting_children(session, run_id)]

    ended, children = retrying(record, settings.store_outage_seconds, f"finishing run {run_id}")
    if ended != status.value:
        return ended
    for child_id, queue in children if status == RunStatus.succeeded else []:
        try:
            send(child_id, queue)
        except Exception:
            log.exception("could not enqueue run %s after its parent %s succeeded", child_id, run_id)
    return status.value


def _watch(
    child: subprocess.Popen | TemplateChild, attempt: Attempt, worker: str, settings: Settings, engine: Engine
) -> str:
    """Heartbeat until the child exits: renew the lease every heartbeat, check for cancellation every second.

    The lease is held until `lease_seconds` after the last renewal that succeeded, counted from before it was sent
    (so never later than the database's own expiry): once renewals have failed past that, another worker may have
    taken the run, so this one returns "lost" and its child is killed. (A renewal that waits on a lock and then
    succeeds is not a failure: the run was still ours when it committed.)
    """
    run_id = attempt.run_id
    poll = min(1.0, settings.heartbeat_seconds)
    next_renew = time.monotonic() + settings.heartbeat_seconds
    held_until = time.monotonic() + settings.lease_seconds
    while True:
        try:
            child.wait(timeout=poll)
            return "exited"
        except subprocess.TimeoutExpired:
            pass
        try:
            with session_scope(engine) as session:
                if time.monotonic() >= next_renew:
                    sent = time.monotonic()
                    if not renew(session, run_id, worker, settings.lease_seconds, attempt.number):
                        return "lost"
                    held_until = sent + settings.lease_seconds
                    next_renew = time.monotonic() + settings.heartbeat_seconds
                cancel = is_cancel_requested(session, run_id)
        except Exception:  # a database hiccup: keep training until the lease runs out (see above)
            log.exception("heartbeat of run %s failed", run_id)
            if time.monotonic() >= held_until:
                log.error("run %s: no lease renewal for %.0f s: killing its training", run_id, settings.lease_seconds)
                return "lost"
            continue
        if cancel:
            with attempt_scope(engine, attempt) as session:
                add_event(session, run_id, "cancellation requested: stopping the training process group")
            return "cancelled"


def _kill_tree(child: subprocess.Popen | TemplateChild) -> None:
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
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", type=uuid.UUID)
    parser.add_argument("--train", action="store_true", help=argparse.SUPPRESS)  # the child, started by execute
    parser.add_argument("--attempt", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output-root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--resume", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.train:
        clock = PhaseClock()
        clock.add("start", process_age())
        # a launched rank has no --parent-pid: it dies with the accelerate launcher that started it
        die_with_parent(args.parent_pid or os.getppid())
        with clock.phase("imports"):
            preload()
        try:
            work(args.run_id, os.environ["FRPO_DATABASE_URL"], args.output_root, args.resume, args.attempt, clock)
        except AttemptSuperseded as superseded:
            log.warning("%s", superseded)
            raise SystemExit(SUPERSEDED_EXIT) from None
    else:
        print(execute(args.run_id))


if __name__ == "__main__":
    main()
