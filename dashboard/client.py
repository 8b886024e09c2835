"""The dashboard's way to the service: `frpo_client.Client`, one per API and key, configured from the environment.

No database, no torch: the dashboard needs nothing but a URL and a read-scoped key, so it can run anywhere the API
is reachable. Every failure is an `ApiError` carrying the API's own message (and the fix it names), so a page shows
what went wrong in words instead of a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from frpo_client import Client
from frpo_client.client import DEFAULT_API_URL

TIMEOUT_S = 10.0
CONCURRENCY = 8  # parallel requests when fetching many runs: enough to hide latency, few enough for a small API

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ApiConfig:
    """Where the API is and the key to use; hashable, so cached reads are keyed by it."""

    url: str
    key: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiConfig:
        """FRPO_API_URL (default http://127.0.0.1:8000) and FRPO_DASHBOARD_API_KEY (falling back to FRPO_API_KEY)."""
        env = os.environ if environ is None else environ
        url = (env.get("FRPO_API_URL") or DEFAULT_API_URL).strip().rstrip("/")
        key = (env.get("FRPO_DASHBOARD_API_KEY") or env.get("FRPO_API_KEY") or "").strip()
        return cls(url=url, key=key)

    def with_key(self, key: str) -> ApiConfig:
        return ApiConfig(url=self.url, key=key)


@lru_cache(maxsize=16)
def client_for(config: ApiConfig) -> Client:
    """One shared client (and connection pool) per API and key, for the life of the dashboard process."""
    return Client(
        config.url, config.key, timeout=TIMEOUT_S, key_env="FRPO_DASHBOARD_API_KEY", max_connections=CONCURRENCY * 2
    )


def concurrently(fn: Callable[[T], R], items: Iterable[T], workers: int = CONCURRENCY) -> list[R]:
    """`[fn(x) for x in items]` on a few threads: the API answers each run's request in a few ms, so latency, not
    CPU, is what fetching twelve runs one after another would cost. The first error is raised."""
    items = list(items)
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="frpo-dashboard") as pool:
        return list(pool.map(fn, items))
