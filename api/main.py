"""The FastAPI app. Imports no torch; starts in well under a second.

Run it: `uvicorn api.main:create_app --factory --port 8000` (configured by FRPO_* environment variables).
Tests build their own: `create_app(settings=..., engine=..., enqueue=recorder)`.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine

from api import errors
from api.deps import Enqueue
from api.key_use import KeyUse
from api.routes import health, jobs, presets, runs, sweeps
from api.schemas import ErrorBody
from store.db import make_engine, session_factory
from store.settings import Settings, get_settings

API_PREFIX = "/api/v1"


def _celery_enqueue() -> Enqueue:
    from workers.celery_app import enqueue  # Celery only, no torch

    return enqueue


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    enqueue: Enqueue | None = None,
    broker_check: Callable[[], None] | None = None,
) -> FastAPI:
    """The app, wired to `engine` (default: settings.database_url) and `enqueue` (default: the Celery app).

    `broker_check` raises if the broker is unreachable (default: a kombu connection to settings.broker_url).
    """
    settings = settings or get_settings()
    app = FastAPI(
        title="frpo-lab",
        version="0.1.0",
        summary="Submit and watch GRPO / FRPO training jobs and sweeps.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine or make_engine(settings.database_url)
    app.state.session_factory = session_factory(app.state.engine)
    app.state.key_use = KeyUse()
    app.state.enqueue = enqueue or _celery_enqueue()
    app.state.broker_check = broker_check or health.kombu_check(settings.broker_url)
    errors.install(app)
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(health.router)
    documented = {status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422)}
    for module in (jobs, runs, sweeps, presets):
        api.include_router(module.router, responses=documented)
    app.include_router(api)
    return app
