"""Migrations: upgrade to head matches the models on both backends; downgrade undoes it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.registry.migrate import alembic_config, check, upgrade
from services.registry.models import AuditEntry


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_models_and_migrations_agree(engine: Engine) -> None:
    # `alembic check` raises if autogenerate would produce any operation.
    check(_url(engine))


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade(_url(engine))
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0022"


@pytest.mark.postgres
def test_audit_log_is_append_only_on_postgres(postgres_engine: Engine) -> None:
    # Other tests on this worker may have left audit rows behind: compare against a snapshot.
    with Session(postgres_engine) as session:
        session.add(AuditEntry(action="create", entity="firm", entity_id="append-only-probe"))
        session.commit()
    snapshot = "SELECT id, action, entity_id FROM audit_log ORDER BY id"
    with postgres_engine.connect() as conn:
        before = conn.execute(sa.text(snapshot)).all()
    assert ("create", "append-only-probe") in [(row.action, row.entity_id) for row in before]
    for statement in ("UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), postgres_engine.begin() as conn:
            conn.execute(sa.text(statement))
    with postgres_engine.connect() as conn:
        assert conn.execute(sa.text(snapshot)).all() == before


def test_downgrade_to_base_and_back(tmp_path: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path}/roundtrip.db"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    inspector_engine = sa.create_engine(url)
    assert set(sa.inspect(inspector_engine).get_table_names()) <= {"alembic_version"}
    upgrade(url)
    assert "firm" in sa.inspect(inspector_engine).get_table_names()
    inspector_engine.dispose()


@pytest.mark.postgres
def test_concurrent_upgrades_wait_for_each_other(postgres_engine: Engine) -> None:
    """Two processes migrating an empty database at once (a replica and the migration Job):
    without the advisory lock one of them fails creating a table the other just created."""
    import multiprocessing

    name = f"{postgres_engine.url.database}_race"
    admin = sa.create_engine(postgres_engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_engine.url.set(database=name).render_as_string(hide_password=False)
    try:
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            pool.map(upgrade, [url, url])
        fresh = sa.create_engine(url)
        with fresh.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        fresh.dispose()
        assert version == "0022"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


STATS_TRIGGERS = {
    f"stats_{table}_{event}"
    for table in ("application", "match_event", "firm")
    for event in ("insert", "delete", "update")
} | {"stats_product_category"}


def test_the_statistics_triggers_survive_every_migration(tmp_path: object) -> None:
    """SQLite rebuilds a table to add a foreign key (a batch "move and copy"), which drops its
    triggers: a migration that does so must create the statistics triggers again."""
    url = f"sqlite:///{tmp_path}/triggers.db"
    upgrade(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = set(
                conn.execute(
                    sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                ).scalars()
            )
    finally:
        engine.dispose()
    assert names == STATS_TRIGGERS
