"""A run's log: one function, used by the API (cancel, retry, enqueue failures) and the workers (claims, outcomes)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from store.models import Event, utcnow


def add_event(session: Session, run_id: uuid.UUID, message: str, *, level: str = "info", **data: Any) -> Event:
    """Append a line (with structured `data`) to a run's log, in the caller's transaction."""
    event = Event(run_id=run_id, message=message, level=level, data=data, time=utcnow())
    session.add(event)
    return event
