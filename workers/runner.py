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
import signal
import socket
import subprocess
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, select

from store.db import make_engine, session_scope
from store.events import add_event
from store.leases import cancel_abandoned, claim, finish, is_cancel_requested, renew, set_progress, waiting_children
from store.metrics import points_from_log, write_points
from store.models import Run, RunStatus
from store.settings import Settings, get_settings
from store.specs import JOB_SPEC
from workers.celery_app import enqueue
from workers.launch import child_command, die_with_parent
from workers.stages import work

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
    # RL and fine-tuning resume from their newest checkpoint; an evaluation whose worker died starts over (its metric
    # points are upserts, so the rerun overwrites them rather than duplicating them).
    resume = latest_checkpoint(output_dir) if spec.kind in ("train", "finetune") else None
    if resume is not None:
        step = int(CHECKPOINT.match(resume.name).group(1))
        with session_scope(engine) as session:
            write_points(session, run.id, checkpoint_points(resume))
            set_progress(session, run.id, step / spec.max_steps, None)
            add_event(session, run.id, f"resumed from {resume.name}", checkpoint=str(resume), step=step)

    # one process, or `accelerate launch` with one per GPU when the spec's `gpu` asks for several (workers.launch)
    command = child_command(run.id, spec, settings.output_root, resume, os.getpid())
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
        # a launched rank has no --parent-pid: it dies with the accelerate launcher that started it
        die_with_parent(args.parent_pid or os.getppid())
        work(args.run_id, os.environ["FRPO_DATABASE_URL"], args.output_root, args.resume)
    else:
        print(execute(args.run_id))


if __name__ == "__main__":
    main()
