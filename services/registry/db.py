"""Database engine, session scope and pool metrics: SQLite (WAL, busy timeout) or PostgreSQL."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, Final

import sqlalchemy as sa
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.pool import QueuePool
from sqlmodel import Session

DB_ERRORS: Final = Counter(
    "finmatch_db_errors_total",
    "Database errors, by operation (select, insert, update, delete; transaction: begin, "
    "commit, rollback; connect; other) and SQLAlchemy error class (IntegrityError, "
    "OperationalError, ...). Includes errors the API turns into a 409.",
    ["operation", "error"],
)
_log = logging.getLogger("finmatch.registry.db")
_STATEMENTS: Final = frozenset({"select", "insert", "update", "delete"})
_TRANSACTION: Final = frozenset({"begin", "commit", "rollback", "savepoint", "release"})


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


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    connect_timeout_seconds: int = 2,
    pool_timeout_seconds: float = 2.0,
) -> Engine:
    """The engine; on PostgreSQL, bounded waits while the server is unreachable (a short
    connect timeout, a short wait for a pooled connection), and a pre-ping that replaces a
    pooled connection the server has dropped (a restart) before a request uses it."""
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
    else:
        engine = sa.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=pool_timeout_seconds,
            pool_pre_ping=True,
            connect_args={"connect_timeout": connect_timeout_seconds},
        )
    event.listen(engine, "handle_error", _count_error)
    return engine


def _count_error(context: ExceptionContext) -> None:
    if context.is_pre_ping:  # a stale pooled connection, replaced without the caller noticing
        return
    statement = context.statement
    if statement is None:
        operation = "connect" if context.connection is None else "transaction"
    else:
        words = statement.split(None, 1)
        verb = words[0].lower() if words else ""
        if verb in _STATEMENTS:
            operation = verb
        else:
            operation = "transaction" if verb in _TRANSACTION else "other"
    error = context.sqlalchemy_exception or context.original_exception
    DB_ERRORS.labels(operation, type(error).__name__).inc()


def _disable_pysqlite_begin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


@lru_cache(maxsize=16)
def _writer_engine(engine: Engine) -> Engine:
    # Same pool and listeners; only the option differs, so the lock is taken lazily at the
    # first statement, in the thread that runs it — never while a dependency waits for a
    # worker thread to become free.
    return engine.execution_options(**{IMMEDIATE: True})


@lru_cache(maxsize=16)
def _statement_engine(engine: Engine) -> Engine:
    if is_sqlite(engine):
        return engine  # our own BEGIN (see _sqlite_begin); a WAL read takes no lock anyway
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def statement_session(engine: Engine) -> Session:
    """A session for a read whose statements may each see their own snapshot (a lookup by
    key): on PostgreSQL it runs without a transaction, so it costs no BEGIN and no ROLLBACK
    round trip, only its statements (the pool restores the isolation level on return)."""
    return Session(_statement_engine(engine), expire_on_commit=False)


def fetch_one(engine: Engine, statement: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
    """One row of a driver-level statement, on a pooled PostgreSQL connection in autocommit.

    For the hottest single-row reads only (a firm for every uncached match): no transaction
    (no BEGIN and ROLLBACK round trips) and no SQLAlchemy Connection and Result around the
    driver's cursor. Measured in-process on PostgreSQL: ~0.3 ms of CPU per read with the
    pool's pre-ping, against ~0.9 ms through a Session. The pool still pre-pings the
    connection, and one that breaks here is invalidated rather than handed back.
    """
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection  # a psycopg Connection (PostgreSQL only)
        driver.autocommit = True  # the pool hands a connection back idle, never in a transaction
        try:
            cursor = driver.execute(statement, params)
            row = cursor.fetchone()
            names = [column.name for column in cursor.description or ()]
        finally:
            if not driver.closed:
                driver.autocommit = False
    except Exception as exc:
        if getattr(raw.driver_connection, "closed", True):
            raw.invalidate(exc)
        raise
    finally:
        raw.close()
    return None if row is None else dict(zip(names, row, strict=True))


def write_session(engine: Engine, session_class: type[Session] = Session) -> Session:
    """A session whose transactions are a writer's (BEGIN IMMEDIATE on SQLite)."""
    return session_class(_writer_engine(engine), expire_on_commit=False)


class PoolCollector(Collector):
    """The connection pool of the engine ``engine()`` returns, read at scrape time.

    PostgreSQL and SQLite files use a QueuePool (SQLite's default since SQLAlchemy 2.0); other
    pools (an in-memory SQLite's per-thread pool, NullPool) keep no counts, so only their kind
    is reported.
    """

    def __init__(self, engine: Callable[[], Engine | None]) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        engine = self.engine()
        if engine is None:
            return
        pool = engine.pool
        info = InfoMetricFamily("finmatch_db_pool", "The database and the kind of its pool.")
        info.add_metric([], {"dialect": engine.dialect.name, "pool": type(pool).__name__})
        yield info
        if not isinstance(pool, QueuePool):
            return
        gauges = (
            ("size", "Connections the pool keeps open (pool_size).", pool.size()),
            ("checked_out", "Connections in use by a request now.", pool.checkedout()),
            ("idle", "Open connections waiting in the pool.", pool.checkedin()),
            # QueuePool counts from -size upwards; only what exceeds the size is overflow.
            ("overflow", "Connections open beyond the pool size now.", max(0, pool.overflow())),
        )
        for name, documentation, value in gauges:
            yield GaugeMetricFamily(f"finmatch_db_pool_{name}", documentation, value=value)


# Work to do right before a session's transaction commits and once it has (dropped if it rolls
# back first): what others must hear of around the commit, e.g. a firm's entry in Redis
# (services.registry.firm_cache). Runs in the committing thread.
_BEFORE_COMMIT: Final = "finmatch_before_commit"
_AFTER_COMMIT: Final = "finmatch_after_commit"


def around_commit(
    session: Session,
    before: Callable[[], object] | None = None,
    after: Callable[[], object] | None = None,
) -> None:
    """Run ``before`` just before this session's next commit and ``after`` once it committed;
    neither if it rolls back first (``before`` may have run when the commit itself fails)."""
    if before is not None:
        session.info.setdefault(_BEFORE_COMMIT, []).append(before)
    if after is not None:
        session.info.setdefault(_AFTER_COMMIT, []).append(after)


def _run(works: Any, when: str) -> None:
    for work in works:
        try:
            work()
        except Exception:  # the write itself stands or falls on its own: never a 500 from here
            _log.exception("work %s a commit failed", when)


@event.listens_for(Session, "before_commit")
def _run_before_commit(session: Any) -> None:
    _run(session.info.pop(_BEFORE_COMMIT, ()), "before")


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Any) -> None:
    _run(session.info.pop(_AFTER_COMMIT, ()), "after")


@event.listens_for(Session, "after_soft_rollback")
def _drop_around_commit(session: Any, previous_transaction: Any) -> None:
    session.info.pop(_BEFORE_COMMIT, None)
    session.info.pop(_AFTER_COMMIT, None)
