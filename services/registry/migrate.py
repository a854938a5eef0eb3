"""Run and check Alembic migrations programmatically (used by the CLI, tests and prestart)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from services.registry.db import normalize_url

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: every finmatch process that migrates takes this PostgreSQL advisory lock.
MIGRATION_LOCK = 0x66696E6D61746368  # "finmatch"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate to ``revision``. On PostgreSQL one process at a time: a registry replica and
    the migration Job starting together would otherwise both try to create the same table;
    the second waits for the lock, then finds nothing left to do."""
    url = normalize_url(database_url)
    if make_url(url).get_backend_name() != "postgresql":
        command.upgrade(alembic_config(database_url), revision)
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            conn.commit()
            try:
                command.upgrade(alembic_config(database_url), revision)
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                conn.commit()
    finally:
        engine.dispose()


def check(database_url: str) -> None:
    """Fail if the models and the migrations disagree (``alembic check``)."""
    command.check(alembic_config(database_url))


def revision(database_url: str, message: str) -> None:
    command.revision(alembic_config(database_url), message=message, autogenerate=True)
