"""Fixtures shared by every test: databases on both backends, the registry app, principals."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from services.registry.db import make_engine, normalize_url
from services.registry.migrate import upgrade
from tests.services import need_postgres

TABLES_CHILD_FIRST = [
    "match_event",
    "import_batch",
    "decision",
    "application",
    "api_key",
    "firm",
    "product",
    "principal",
    "institution",
    "audit_log",
]


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _fresh_postgres_database(base_url: str) -> str:
    """A database of our own per xdist worker, dropped and recreated each run."""
    url = make_url(normalize_url(base_url))
    name = f"finmatch_test_{_worker()}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


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
    url = _fresh_postgres_database(need_postgres())
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _wipe(engine: Engine) -> None:
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
