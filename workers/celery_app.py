"""The Celery app. Imports no torch, so the API can enqueue through it.

The broker only says "there is work"; the store says what state a job is in. Hence: acks late (a message is
acknowledged only once its job has ended), prefetch 1 (a worker holds one job at a time), and a visibility timeout
far longer than any job (Redis must not redeliver a running job's message). A pool process runs job after job: each
job trains in a child process of its own (workers.runner), which takes its model and GPU memory with it when it
ends, so replacing the pool process after each job (as before) bought nothing and cost a fork per job, forks of a
process whose threads use SQLite (workers.tasks).
"""

from __future__ import annotations

import uuid

from celery import Celery

from store.settings import get_settings

TASK_RUN_JOB = "workers.tasks.run_job"
QUEUES = ("cpu", "gpu")


def make_app(broker_url: str | None = None) -> Celery:
    broker_url = broker_url or get_settings().broker_url
    app = Celery("frpo", broker=broker_url, include=["workers.tasks"])
    # Redis (and SQS) redeliver an unacknowledged message after the visibility timeout: make it longer than any job.
    # Kombu's SQLAlchemy transport has no such timeout and hands every transport option to create_engine.
    transport_options = {} if broker_url.startswith("sqla+") else {"visibility_timeout": 7 * 24 * 3600}
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="cpu",
        task_track_started=False,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        # a broker restart must not stop the job in progress: the store, not the broker, holds its state
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_ignore_result=True,
    )
    return app


app = make_app()


def enqueue(run_id: uuid.UUID, queue: str) -> None:
    """Tell a worker on `queue` that run `run_id` is waiting. Safe to repeat: a claimed run is not run twice."""
    if queue not in QUEUES:
        raise ValueError(f"queue must be one of {QUEUES}, got {queue!r}")
    app.send_task(TASK_RUN_JOB, args=[str(run_id)], queue=queue)
