"""Database engine and session scope: SQLite (WAL, busy timeout) by default, PostgreSQL in prod."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session


def normalize_url(url: str) -> str:
    # Operators write postgresql://; we drive it with psycopg 3.
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.removeprefix("postgres://")
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged commit survives a power loss, not only an application crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


IMMEDIATE = "finmatch_sqlite_immediate"


def _sqlite_begin(conn: Any) -> None:
    # A writer takes the write lock up front: a deferred read→write upgrade fails with
    # SQLITE_BUSY at once instead of waiting out busy_timeout. Readers stay deferred so that,
    # under WAL, they never block anyone.
    if conn.get_execution_options().get(IMMEDIATE, False):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling would issue a deferred BEGIN; we issue ours.
        event.listen(engine, "connect", _disable_pysqlite_begin)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _disable_pysqlite_begin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


@lru_cache(maxsize=16)
def _writer_engine(engine: Engine) -> Engine:
    # Same pool and listeners; only the option differs, so the lock is taken lazily at the
    # first statement, in the thread that runs it — never while a dependency waits for a
    # worker thread to become free.
    return engine.execution_options(**{IMMEDIATE: True})


def write_session(engine: Engine) -> Session:
    """A session whose transactions are a writer's (BEGIN IMMEDIATE on SQLite)."""
    return Session(_writer_engine(engine), expire_on_commit=False)
