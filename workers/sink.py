"""Stream a Trainer's logs, progress and checkpoints into the store without slowing the training loop.

`on_log` only turns the log dict into (key, step, value) points and puts them on a queue; a background thread
writes them in batches (every `flush_seconds` or `batch_points` points, whichever comes first) together with the
run's progress and ETA. A slow or briefly locked database therefore never stalls an optimiser step. `on_save`
waits for the queue to drain before recording the checkpoint artifact, so every point up to a checkpoint's step is
in the store once the checkpoint is; `on_train_end` drains it and stops the thread.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from store.db import session_scope
from store.leases import set_progress
from store.metrics import BATCH_SIZE, Point, points_from_log, record_artifact, write_points

log = logging.getLogger(__name__)

WEIGHTS_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def describe_model_dir(path: Path) -> tuple[int, str]:
    """Total size of a checkpoint folder and the sha256 of its weights file (of the first shard-less one found)."""
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    for name in WEIGHTS_FILES:
        if (path / name).is_file():
            return size, sha256_file(path / name)
    return size, ""


class _Flush:
    """A marker on the queue: the writer sets `done` once everything before it is written."""

    def __init__(self) -> None:
        self.done = threading.Event()


class StoreSink(TrainerCallback):
    """A TrainerCallback that streams one run's metrics, progress and checkpoints into the store."""

    def __init__(
        self, engine: Engine, run_id: uuid.UUID, flush_seconds: float = 1.0, batch_points: int = BATCH_SIZE
    ) -> None:
        self.engine = engine
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self.batch_points = batch_points
        self._queue: queue.Queue = queue.Queue()
        self._progress: tuple[float, float | None] | None = None
        self._started: tuple[float, int] | None = None  # (time, global_step) when this attempt began training
        self._thread = threading.Thread(target=self._writer, name=f"metrics-{run_id}", daemon=True)
        self._thread.start()

    # --- the training loop's side: cheap, never touches the database -------------------------------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._started = (time.monotonic(), state.global_step)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kwargs):
        points = points_from_log(logs or {}, state.global_step)
        if points:
            self._queue.put(points)
        self._progress = self._estimate(state)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self.flush()
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if path.is_dir():
            size, digest = describe_model_dir(path)
            with session_scope(self.engine) as session:
                record_artifact(session, self.run_id, "checkpoint", str(path), size, digest, state.global_step)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._progress = self._estimate(state)
        self.close()

    def _estimate(self, state: TrainerState) -> tuple[float, float | None]:
        total = state.max_steps or 0
        progress = state.global_step / total if total else 0.0
        eta = None
        if self._started is not None and total:
            began, first_step = self._started
            done = state.global_step - first_step
            if done > 0:
                eta = (time.monotonic() - began) / done * max(total - state.global_step, 0)
        return progress, eta

    # --- the writer thread ---------------------------------------------------------------------------------------
    def flush(self, timeout: float = 60.0) -> None:
        """Block until every point logged so far is written."""
        if not self._thread.is_alive():
            return
        marker = _Flush()
        self._queue.put(marker)
        marker.done.wait(timeout)

    def close(self) -> None:
        """Write what is left and stop the writer thread."""
        self.flush()
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _writer(self) -> None:
        pending: list[Point] = []
        markers: list[_Flush] = []
        deadline = time.monotonic() + self.flush_seconds
        while True:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                item = ...
            if isinstance(item, list):
                pending.extend(item)
            elif isinstance(item, _Flush):
                markers.append(item)
            due = item is None or markers or len(pending) >= self.batch_points or time.monotonic() >= deadline
            if due:
                if self._write(pending) or len(pending) > 100 * self.batch_points:
                    pending = []  # written (or, after a long outage, given up rather than hold memory forever)
                for marker in markers:
                    marker.done.set()
                markers = []
                deadline = time.monotonic() + self.flush_seconds
            if item is None:
                return

    def _write(self, points: list[Point]) -> bool:
        progress = self._progress
        if not points and progress is None:
            return True
        try:
            with session_scope(self.engine) as session:
                if points:
                    write_points(session, self.run_id, points)
                if progress is not None:
                    set_progress(session, self.run_id, *progress)
            if progress == self._progress:
                self._progress = None
            return True
        except Exception:  # a failed batch must not kill the writer: it is kept and retried at the next flush
            log.exception("could not write %d metric points of run %s", len(points), self.run_id)
            return False
