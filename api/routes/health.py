"""Liveness (no database, no key) and readiness (database and broker reachable)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.schemas import Health

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])
BROKER_TIMEOUT_S = 2.0
FIXES = {
    "database": "check FRPO_DATABASE_URL and that the database is up and migrated",
    "broker": "check FRPO_BROKER_URL and that the broker (Redis) is up",
}


def kombu_check(broker_url: str) -> Callable[[], None]:
    """A check that connects to the broker once, with a short timeout, and raises if it cannot."""

    def check() -> None:
        from kombu import Connection

        options = {"socket_connect_timeout": BROKER_TIMEOUT_S, "socket_timeout": BROKER_TIMEOUT_S}
        with Connection(broker_url, connect_timeout=BROKER_TIMEOUT_S, transport_options=options) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_S)

    return check


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up. Touches nothing else, and runs on the event loop: it never waits for a thread of the pool
    that the (sync) database handlers share."""
    return Health(status="ok")


@router.get(
    "/readyz", response_model=Health, responses={503: {"description": "The error shape, plus status and checks."}}
)
def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database answers SELECT 1 and the broker accepts a connection."""
    checks: dict[str, str] = {}
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        logger.warning("readiness: database unreachable", exc_info=True)
        checks["database"] = f"failed: {type(exc).__name__}"
    try:
        request.app.state.broker_check()
        checks["broker"] = "ok"
    except Exception as exc:
        logger.warning("readiness: broker unreachable", exc_info=True)
        checks["broker"] = f"failed: {type(exc).__name__}"
    failed = [name for name, value in checks.items() if value != "ok"]
    if not failed:
        return JSONResponse(Health(status="ok", checks=checks).model_dump())
    fields = [{"field": name, "message": checks[name], "fix": FIXES[name]} for name in failed]
    body = {"error": {"code": "not_ready", "message": f"not ready: {', '.join(failed)} unreachable", "fields": fields}}
    return JSONResponse({**body, "status": "unavailable", "checks": checks}, status_code=503)
