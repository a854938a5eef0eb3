"""SQLite engine: writers take the lock at BEGIN, readers never wait for them (WAL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from services.registry.db import make_engine, normalize_url, write_session


def test_postgres_urls_use_psycopg3() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_writer_takes_the_lock_at_its_first_statement_and_readers_pass(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/lock.db")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"

    writer = write_session(engine)
    other = sqlite3.connect(tmp_path / "lock.db", timeout=0.05, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # nothing is held until the writer's first statement
    other.execute("ROLLBACK")
    assert writer.execute(sa.text("SELECT x FROM t")).scalar_one() == 1  # BEGIN IMMEDIATE
    with Session(engine) as reader:
        assert reader.execute(sa.text("SELECT x FROM t")).scalar_one() == 1

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("BEGIN IMMEDIATE")
    writer.close()
    other.execute("BEGIN IMMEDIATE")  # released with the writer
    other.execute("ROLLBACK")
    other.close()
    engine.dispose()
