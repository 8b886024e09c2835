"""When each API key was last used, recorded without a write per request.

A key's `last_used_at` is kept to the minute (queries.LAST_USED_RESOLUTION): a request writes it only when the
stored value is older than that, and only the first such request of this process does (the others see the claim
and skip). So a read costs no write, and on SQLite never waits for the write lock a worker's metric writes hold.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session

from store import queries
from store.models import ApiKey, utcnow

logger = logging.getLogger(__name__)


class KeyUse:
    """The keys whose use this process has recorded in the last LAST_USED_RESOLUTION (one per app)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claimed: dict[int, float] = {}  # key id -> monotonic time of this process's last write

    def record(self, session: Session, key: ApiKey) -> None:
        """Write `key`'s use in `session` (the request's own, nothing else pending in it) if it is due; committed
        at once so the write lock is held for one statement. A failure is logged, never the request's."""
        last = queries.as_utc(key.last_used_at)
        if last is not None and utcnow() - last < queries.LAST_USED_RESOLUTION:
            return
        if not self._claim(key.id):
            return
        try:
            queries.touch_api_key(session, key.id)
            session.commit()
        except Exception:
            session.rollback()
            logger.warning("could not record API key use", exc_info=True)

    def _claim(self, key_id: int) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._claimed.get(key_id, -float("inf")) < queries.LAST_USED_RESOLUTION.total_seconds():
                return False
            self._claimed[key_id] = now
            return True
