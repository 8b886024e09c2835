"""Riding out a short database outage: retry a whole transaction with backoff while the database is unreachable.

Only errors that say the database could not be reached or the connection broke (SQLAlchemy's OperationalError and
InterfaceError, or any DBAPIError that invalidated its connection) are retried; anything else, a refused write
(`store.leases.AttemptSuperseded`) included, propagates at once. Each try is a fresh transaction, so a retried
write is never half-applied, and the writes retried here are idempotent (upserts, conditional UPDATEs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_DELAY_SECONDS = 0.25
MAX_DELAY_SECONDS = 5.0


def is_outage(error: BaseException) -> bool:
    """Whether `error` means the database is (briefly) unreachable rather than that the statement was wrong."""
    if isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def retrying(write: Callable[[], T], outage_seconds: float, what: str) -> T:
    """`write()`, tried again with exponential backoff (0.25 s doubling to 5 s) while it fails with an outage, for
    up to `outage_seconds`; the last error is raised after that."""
    deadline = time.monotonic() + outage_seconds
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            return write()
        except Exception as error:
            if not is_outage(error) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s: database unreachable (%s); retrying in %.2f s", what, type(error).__name__, delay)
        time.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_SECONDS)
