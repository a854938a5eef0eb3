"""Bringing the statistics cube up to date before a query reads it.

Two kinds of pending work (see migration 0019): months marked dirty in ``stats_dirty`` (a bulk
write, a product's new category, a TRUNCATE) are rebuilt from their rows; the changes the
triggers logged for small writes are applied to the cells they touch (stats/delta.py), which
is what a query after an ordinary write pays: milliseconds, not a month's rebuild.

Consistency on PostgreSQL: one refresher at a time (a session advisory lock, taken before any
snapshot), and each step in one REPEATABLE READ transaction, so the rows a step reads and the
log rows it consumes are the same snapshot's. A write committed after that snapshot keeps its
log rows (or its dirty mark) for the next refresh. A dirty month's mark is cleared afterwards,
in its own transaction, only if its version is still the one the rebuild read; a write that
marked it again meanwhile leaves it dirty. SQLite has one writer at a time: each step is one
BEGIN IMMEDIATE transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.registry.db import write_session
from services.registry.models.stats_cube import stats_dirty
from services.registry.stats import cube, delta
from services.registry.stats.china_time import month_start, next_month

log = logging.getLogger(__name__)
# Any fixed number: the PostgreSQL advisory lock held while the cube is brought up to date.
REFRESH_LOCK = 0x66696E737461747300 >> 8  # "finstats"

Transaction = Callable[[str], AbstractContextManager[Connection]]


def pending(engine: Engine) -> bool:
    """Whether any month is dirty or any change is logged (one cheap query)."""
    tables = (stats_dirty, *delta.LOGS)
    with engine.connect() as conn:
        return bool(
            conn.execute(sa.select(sa.or_(*(sa.exists(t.select()) for t in tables)))).scalar()
        )


def refresh(engine: Engine) -> int:
    """Rebuild the dirty months, then apply the logged changes; return the months changed."""
    if not pending(engine):
        return 0
    started = time.perf_counter()
    with _refresher(engine) as transaction:
        rebuilt = _rebuild_dirty(transaction)
        applied, fell_back = _apply_logged(transaction)
    if rebuilt or applied or fell_back:
        log.info(
            "statistics cube: %d month(s) rebuilt, %d updated by their logged changes, %.0f ms",
            rebuilt + fell_back,
            applied,
            (time.perf_counter() - started) * 1000,
        )
    return rebuilt + applied + fell_back


def _rebuild_dirty(transaction: Transaction) -> int:
    with transaction("READ COMMITTED") as conn:
        dirty = conn.execute(sa.select(stats_dirty.c.month).order_by(stats_dirty.c.month)).all()
    rebuilt = 0
    for (month,) in dirty:
        with transaction("REPEATABLE READ") as conn:
            version = conn.execute(
                sa.select(stats_dirty.c.version).where(stats_dirty.c.month == month)
            ).scalar_one_or_none()
            if version is None:  # another refresher got there first
                continue
            rebuild(conn, month)
        with transaction("READ COMMITTED") as conn:
            # Cleared only if no write has marked the month again since ``version`` was read.
            conn.execute(
                sa.delete(stats_dirty).where(
                    stats_dirty.c.month == month, stats_dirty.c.version == version
                )
            )
        rebuilt += 1
    return rebuilt


def _apply_logged(transaction: Transaction) -> tuple[int, int]:
    """Apply every clean month's logged changes in one transaction: (applied, rebuilt)."""
    applied = rebuilt = 0
    with transaction("REPEATABLE READ") as conn:
        dirty = set(conn.execute(sa.select(stats_dirty.c.month)).scalars())
        logged = delta.logged_months(conn)
        for month in sorted(logged.keys() - dirty):
            if logged[month] > delta.MAX_LOGGED:
                rebuild(conn, month)
                rebuilt += 1
                continue
            try:
                delta.apply(conn, month)  # raises before it writes anything
                _consume(conn, month)
                applied += 1
            except delta.Disagreement as error:
                log.warning("statistics cube: %s: %s; rebuilding the month", month, error)
                rebuild(conn, month)
                rebuilt += 1
    return applied, rebuilt


def rebuild(conn: Connection, month: str) -> None:
    """The month's cells from its rows; its logged changes are in them, so they go."""
    start = month_start(month)
    cube.store(conn, month, cube.build(conn, start, next_month(start)))
    _consume(conn, month)


def _consume(conn: Connection, month: str) -> None:
    # The transaction's snapshot: exactly the log rows its reads saw.
    for table in delta.LOGS:
        conn.execute(sa.delete(table).where(table.c.month == month))


@contextmanager
def _refresher(engine: Engine) -> Iterator[Transaction]:
    """Hand out transactions of one refresher at a time, at the isolation level asked."""
    if engine.dialect.name != "postgresql":

        @contextmanager
        def sqlite_transaction(_isolation: str) -> Iterator[Connection]:
            with write_session(engine) as session, session.begin():
                yield session.connection()

        yield sqlite_transaction
        return
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": REFRESH_LOCK})
        conn.commit()

        @contextmanager
        def pg_transaction(isolation: str) -> Iterator[Connection]:
            conn.execution_options(isolation_level=isolation)
            with conn.begin():
                yield conn

        try:
            yield pg_transaction
        finally:
            if conn.in_transaction():
                conn.rollback()
            conn.execution_options(isolation_level="READ COMMITTED")
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": REFRESH_LOCK})
            conn.commit()
