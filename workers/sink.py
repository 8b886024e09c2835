"""Stream a Trainer's logs, progress and checkpoints into the store without slowing the training loop.

`on_log` only turns the log dict into (key, step, value) points and puts them on a queue; a background thread
writes them in batches (every `flush_seconds` or `batch_points` points, whichever comes first) together with the
run's progress and ETA. A slow or briefly locked database therefore never stalls an optimiser step. `on_save`
waits for the queue to drain before recording the checkpoint artifact, so every point up to a checkpoint's step is
in the store once the checkpoint is; `on_train_end` drains it and stops the thread.

Every write is fenced by the run's attempt (`store.leases.attempt_scope`): once another attempt owns the run, the
writer stops and the next callback raises `AttemptSuperseded`, which ends the training. A database outage is ridden
out: the writer keeps its points and tries again with backoff, and past `SPILL_BATCHES` batches it appends them to
`metrics-spill.jsonl` in the attempt's folder rather than holding (or dropping) them; the first write that succeeds
again merges the spill, oldest first. Checkpoint artifacts retry the same way, for up to `outage_seconds`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from pathlib import Path

from sqlalchemy import Engine
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from store.leases import Attempt, AttemptSuperseded, attempt_scope, set_progress
from store.metrics import BATCH_SIZE, Point, points_from_log, record_artifact, write_points
from store.retry import retrying

log = logging.getLogger(__name__)

SPILL_BATCHES = 10  # batches held in memory during an outage before they go to the spill file
MAX_BACKOFF_SECONDS = 5.0
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
    """A TrainerCallback that streams one attempt's metrics, progress and checkpoints into the store."""

    def __init__(
        self,
        engine: Engine,
        attempt: Attempt,
        flush_seconds: float = 1.0,
        batch_points: int = BATCH_SIZE,
        outage_seconds: float = 60.0,
    ) -> None:
        self.engine = engine
        self.attempt = attempt
        self.flush_seconds = flush_seconds
        self.batch_points = batch_points
        self.outage_seconds = outage_seconds
        self.superseded = False
        self.spill: Path | None = None  # set at train begin: the attempt's folder
        self._queue: queue.Queue = queue.Queue()
        self._progress: tuple[float, float | None] | None = None
        self._started: tuple[float, int] | None = None  # (time, global_step) when this attempt began training
        self._thread = threading.Thread(target=self._writer, name=f"metrics-{attempt.run_id}", daemon=True)
        self._thread.start()

    # --- the training loop's side: cheap, never touches the database but to record a checkpoint ------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._started = (time.monotonic(), state.global_step)
        if args is not None:
            self.spill = Path(args.output_dir) / "metrics-spill.jsonl"

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kwargs):
        self._stop_if_superseded()
        points = points_from_log(logs or {}, state.global_step)
        if points:
            self._queue.put(points)
        self._progress = self._estimate(state)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._stop_if_superseded()

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self.flush(timeout=self.outage_seconds)
        self._stop_if_superseded()
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if path.is_dir():
            size, digest = describe_model_dir(path)
            path_step = state.global_step

            def record() -> None:
                with attempt_scope(self.engine, self.attempt) as session:
                    record_artifact(session, self.attempt.run_id, "checkpoint", str(path), size, digest, path_step)

            retrying(record, self.outage_seconds, f"recording {path.name} of run {self.attempt.run_id}")

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._progress = self._estimate(state)
        self.close()

    def _stop_if_superseded(self) -> None:
        if self.superseded:
            raise AttemptSuperseded(self.attempt)

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
        """Block until every point logged so far is written (or `timeout` passes: they stay queued or spilled)."""
        if not self._thread.is_alive():
            return
        marker = _Flush()
        self._queue.put(marker)
        marker.done.wait(timeout)

    def close(self) -> None:
        """Write what is left (riding out an outage of up to `outage_seconds`) and stop the writer thread."""
        self.flush(timeout=self.outage_seconds)
        self._queue.put(None)
        self._thread.join(timeout=self.outage_seconds + 60)

    def _writer(self) -> None:
        pending: list[Point] = []
        markers: list[_Flush] = []
        stopping_since: float | None = None
        failing, backoff = False, self.flush_seconds
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
            elif item is None:
                stopping_since = time.monotonic()
            now = time.monotonic()
            wanted = markers or stopping_since is not None or len(pending) >= self.batch_points
            if now < deadline and (failing or not wanted):
                continue
            written = self._write(pending)
            if written or self.superseded:
                pending, failing, backoff = [], False, self.flush_seconds
            else:
                failing, backoff = True, min(max(backoff * 2, 0.25), MAX_BACKOFF_SECONDS)
                if len(pending) >= SPILL_BATCHES * self.batch_points:
                    pending = self._spill(pending)
            if written or self.superseded:
                for marker in markers:
                    marker.done.set()
                markers = []
            if self.superseded:
                return
            deadline = time.monotonic() + backoff
            if stopping_since is not None and (
                written or self.superseded or now - stopping_since >= self.outage_seconds
            ):
                self._spill(pending)
                for marker in markers:
                    marker.done.set()
                return

    def _spill(self, points: list[Point]) -> list[Point]:
        """Append `points` to the spill file; returns what is still to hold (all of them if there is no file)."""
        if not points or self.spill is None:
            return points
        try:
            with open(self.spill, "a") as handle:
                handle.writelines(json.dumps(point) + "\n" for point in points)
        except OSError:
            log.exception("could not spill %d metric points of run %s", len(points), self.attempt.run_id)
            return points
        log.warning("database unreachable: spilled %d metric points to %s", len(points), self.spill)
        return []

    def _spilled(self) -> list[Point]:
        if self.spill is None or not self.spill.is_file():
            return []
        return [tuple(json.loads(line)) for line in self.spill.read_text().splitlines() if line.strip()]

    def _write(self, points: list[Point]) -> bool:
        progress = self._progress
        spilled = self._spilled()
        if not points and not spilled and progress is None:
            return True
        try:
            with attempt_scope(self.engine, self.attempt) as session:
                if spilled or points:
                    write_points(session, self.attempt.run_id, [*spilled, *points])  # the newer value wins
                if progress is not None:
                    set_progress(session, self.attempt.run_id, *progress)
        except AttemptSuperseded:
            log.warning("run %s: attempt %d was superseded; its writer stops", self.attempt.run_id, self.attempt.number)
            self.superseded = True
            return False
        except Exception:  # an outage must not kill the writer: the batch is kept (or spilled) and retried
            log.exception("could not write %d metric points of run %s", len(points), self.attempt.run_id)
            return False
        if spilled:
            self.spill.unlink(missing_ok=True)
        if progress == self._progress:
            self._progress = None
        return True
