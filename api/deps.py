"""Dependencies, as `Annotated` aliases a handler names in its signature (FastAPI full-stack template style).

One session per request: handlers commit once, on success; anything uncommitted is rolled back when the request
ends, so a failed request writes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.errors import ApiError
from store import queries
from store.events import add_event
from store.models import ApiKey, Run
from store.settings import Settings

logger = logging.getLogger(__name__)

Enqueue = Callable[[uuid.UUID, str], None]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


# Requests that may hold a database connection at once, per process; the others wait on the event loop, holding
# neither a thread nor a connection. Fewer than the pool's connections (store.db.POOL: 40) and Starlette's threads
# (40): a sync dependency or handler gives its thread back between steps, so without this bound 200 requests each
# holding a connection waited for a thread while every thread waited for a connection (the pool's 30 s timeout).
SESSION_SLOTS = 32


def _session_slots(request: Request) -> asyncio.Semaphore:
    """The app's semaphore for the running event loop (a test may run the same app on several loops)."""
    state, loop = request.app.state, asyncio.get_running_loop()
    slots = getattr(state, "session_slots", None)
    if slots is None or slots[0] is not loop:
        slots = state.session_slots = (loop, asyncio.Semaphore(SESSION_SLOTS))
    return slots[1]


async def get_session(request: Request) -> AsyncIterator[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    async with _session_slots(request):
        session = factory()
        try:
            yield session
        finally:
            await run_in_threadpool(session.close)  # rolls back whatever the handler did not commit


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer frpo_<prefix>_<secret>`.")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def current_key(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized("missing API key: send 'Authorization: Bearer frpo_<prefix>_<secret>'")
    key = queries.authenticate(session, credentials.credentials)
    if key is None:
        raise _unauthorized("invalid or revoked API key")
    request.app.state.key_use.record(session, key)  # at most once a minute per key, in this same session
    return key


CurrentKey = Annotated[ApiKey, Depends(current_key)]


def require_scope(scope: str) -> Callable[[ApiKey], ApiKey]:
    """A dependency that lets through keys holding `scope` (admin ⊃ submit ⊃ read)."""

    def check(key: CurrentKey) -> ApiKey:
        if not queries.key_has_scope(key, scope):
            raise ApiError(403, "forbidden", f"this API key lacks the '{scope}' scope (it has {', '.join(key.scopes)})")
        return key

    return check


ReadKey = Annotated[ApiKey, Depends(require_scope("read"))]
SubmitKey = Annotated[ApiKey, Depends(require_scope("submit"))]
AdminKey = Annotated[ApiKey, Depends(require_scope("admin"))]


# --- idempotency ----------------------------------------------------------------------------------------------------


@dataclass
class Idempotency:
    """A POST's `Idempotency-Key`: replay a stored answer, or store this one with the request's own work."""

    request: Request
    session: Session
    api_key_id: int
    key: str | None
    request_hash: str

    def replay(self) -> JSONResponse | None:
        if self.key is None:
            return None
        record = queries.get_idempotency_record(self.session, self.api_key_id, self.key)
        if record is None:
            return None
        if record.request_hash != self.request_hash:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "Idempotency-Key was already used with a different request",
                [
                    {
                        "field": "Idempotency-Key",
                        "message": "this key was used for a different body or endpoint",
                        "fix": "use a new Idempotency-Key for a new request",
                    }
                ],
            )
        return JSONResponse(record.response, status_code=record.status_code, headers={"Idempotent-Replay": "true"})

    def commit(self, status_code: int, body: dict[str, Any], enqueue: Sequence[Run] = ()) -> JSONResponse:
        """Store the answer (if keyed), commit the request's transaction, then enqueue `enqueue`.

        A concurrent twin with the same key that committed first wins: this transaction rolls back (nothing of it
        is enqueued) and the twin's answer is replayed.
        """
        if self.key is not None:
            queries.save_idempotency_record(
                self.session, self.api_key_id, self.key, self.request_hash, status_code, body
            )
        try:
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            replayed = self.replay() if self.key is not None else None
            if replayed is None:
                raise
            return replayed
        dispatch(self.request, self.session, enqueue)  # only after the commit: a worker must find the rows
        return JSONResponse(body, status_code=status_code)


async def _request_hash(request: Request) -> str:
    raw = await request.body()
    try:  # the same JSON with other whitespace or key order is the same request
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode() if raw else b""
    except ValueError:
        canonical = raw
    return hashlib.sha256(request.method.encode() + b" " + request.url.path.encode() + b"\n" + canonical).hexdigest()


async def get_idempotency(
    request: Request,
    session: SessionDep,
    key: SubmitKey,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="Retrying a POST with the same key and body replays the first answer."),
    ] = None,
) -> Idempotency:
    return Idempotency(request, session, key.id, idempotency_key or None, await _request_hash(request))


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]


def dispatch(request: Request, session: Session, runs: Sequence[Run]) -> None:
    """Enqueue committed runs. A broker failure leaves the run queued (a worker's recovery scan finds it) and is
    recorded as an event on the run, in the request's session (its work already committed: no second session, no
    second connection); the request still succeeds."""
    enqueue: Enqueue = request.app.state.enqueue
    for run in runs:
        try:
            enqueue(run.id, run.queue)
        except Exception as exc:
            logger.warning("enqueue of run %s failed; it stays queued for the recovery scan", run.id, exc_info=True)
            try:
                add_event(
                    session,
                    run.id,
                    "enqueue failed; the run stays queued and a worker's recovery scan will pick it up",
                    level="warning",
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                )
                session.commit()
            except Exception:
                session.rollback()
                logger.exception("could not record the enqueue failure of run %s", run.id)
