"""Fixtures shared by every test: databases on both backends, the registry app, principals."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from services.registry.db import make_engine, normalize_url
from services.registry.migrate import upgrade
from tests.services import need_postgres

# The suite builds hundreds of apps in one process: freezing each one's start-up heap
# (shared.heap) would keep all their cycles alive. Services started as processes inherit it.
os.environ.setdefault("FINMATCH_GC_FREEZE", "false")
# Nor should each of those apps start bulk-validation workers: the pool's own tests
# (tests/registry/test_validation_pool.py) share one.
os.environ.setdefault("FINMATCH_BULK_VALIDATE_PROCESSES", "0")

TABLES_CHILD_FIRST = [
    "training_job",
    "match_scan",
    "webhook_attempt",
    "webhook_delivery",
    "outbox_event",
    "webhook_endpoint",
    "idempotency_record",
    "model_version",
    "match_event",
    "imported_decision",
    "import_batch",
    "register",
    "register_entry",
    "register_upload",
    "decision",
    "application",
    "consent",
    "api_key",
    "firm",
    "product",
    "principal",
    "institution",
    "audit_log",
    # Last: deleting the rows above logs their changes (SQLite runs the triggers on DELETE).
    "stats_cube_by",
    "stats_cube",
    "stats_dirty",
    "stats_application_change",
    "stats_event_change",
    "stats_firm_change",
]


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _database_name() -> str:
    # Per worker and per run, so that concurrent runs on one server never share a database.
    return f"finmatch_test_{_worker()}_{os.getpid()}"


def _admin_execute(base_url: str, statement: str) -> None:
    admin = sa.create_engine(make_url(normalize_url(base_url)), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(statement))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = Path(tmp_path_factory.mktemp("db")) / "registry.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    """A fresh database of our own on the real PostgreSQL, migrated, dropped at the end."""
    base_url = need_postgres()
    name = _database_name()
    _admin_execute(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_execute(base_url, f'CREATE DATABASE "{name}"')
    url = make_url(normalize_url(base_url)).set(database=name).render_as_string(False)
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    _admin_execute(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# A previous test's app may still be finishing background reads (matching's start-up read of
# every firm through the registry, say) when the next test wipes: PostgreSQL then breaks the
# TRUNCATE's lock wait as a deadlock. The reader ends within moments; the wipe tries again.
WIPE_ATTEMPTS = 5


def _wipe(engine: Engine) -> None:
    for attempt in range(WIPE_ATTEMPTS):
        try:
            _wipe_once(engine)
            return
        except OperationalError as exc:
            deadlock = "deadlock detected" in str(exc.orig)
            if not deadlock or attempt == WIPE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _wipe_once(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES_CHILD_FIRST)} RESTART IDENTITY"))
        else:
            for table in TABLES_CHILD_FIRST:
                conn.execute(sa.text(f"DELETE FROM {table}"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The registry database on each backend, empty at the start of every test."""
    fixture = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    db: Engine = request.getfixturevalue(fixture)
    _wipe(db)
    return db
