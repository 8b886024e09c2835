"""Engine and sessions. SQLite (the embedded default) gets WAL, foreign keys and a busy timeout so the API and a
worker process can share the file; PostgreSQL gets a pre-pinged pool.

WAL lets the API's readers go on while a worker writes metrics (a reader never waits for the write lock, a writer
never for readers); `synchronous=NORMAL` is WAL's recommended setting (a commit is one append to the log, no fsync;
the file stays consistent, only the last commits can be lost on a power cut), so a worker holds the write lock for
less time; a writer that finds it taken waits up to 30 s for it rather than failing.

The pool holds as many connections as the API has threads (Starlette runs sync handlers on a pool of 40): a request
uses one connection, from its first query until its session closes, and never opens a second, so a thread never
waits for a connection another thread holds. (Every request used to open a second session for the key's
last_used_at while holding its first: with 15 connections and 40 threads, 50 clients left every thread holding one
connection and waiting 30 s for another.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from store.settings import get_settings

POOL = {"pool_size": 10, "max_overflow": 30}  # up to 40 connections: one per thread of the API's pool
SQLITE_BUSY_TIMEOUT_S = 30
PG_CONNECT_TIMEOUT_S = 10


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        in_memory = make_url(url).database in (None, "", ":memory:")  # one connection for all: no pool to size
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
        engine = create_engine(url, connect_args=connect_args, **({} if in_memory else POOL))

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.close()

        return engine
    # connect_timeout: a worker cut off from the database by a partition fails its heartbeat in seconds (and stops
    # its training once the lease's length has passed, workers.runner) instead of waiting on TCP for minutes
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S}, **POOL)


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for `url` (default: the configured database)."""
    return make_engine(url or get_settings().database_url)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error: nothing half-written."""
    with session_factory(engine or get_engine())() as session, session.begin():
        yield session
