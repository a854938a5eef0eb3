"""Consents a firm can revoke: one per firm and institution, the applications under it.

Revision ID: 0012
Revises: 0011
Create Date: 2027-02-10 10:00:00

Until now a consent was a flag on each application. A consent row names the institution
that received the profile; each application points at the consent it shared the profile
under. Backfill: one standing consent per firm and institution that has applications,
granted when the first of them was made (withdrawn applications included: the institution
received the profile through them too).
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import services.registry.models.columns

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ACTIVE = "revoked_at IS NULL"

# Portable (PostgreSQL and SQLite): no consent was ever revoked before this revision, so each
# (firm, institution) pair has exactly one consent to point at.
_BACKFILL_CONSENTS = """
INSERT INTO consent (firm_id, institution_id, granted_at)
SELECT firm_id, institution_id, MIN(consent_at)
FROM application
WHERE firm_id IS NOT NULL
GROUP BY firm_id, institution_id
"""
_LINK_APPLICATIONS = """
UPDATE application SET consent_id = (
    SELECT consent.id FROM consent
    WHERE consent.firm_id = application.firm_id
      AND consent.institution_id = application.institution_id
)
WHERE firm_id IS NOT NULL
"""


def _when(name: str, *, nullable: bool) -> sa.Column[datetime]:
    return sa.Column(
        name, services.registry.models.columns.UtcDateTime(timezone=True), nullable=nullable
    )


def _sqlite_mark(row: str) -> str:
    return (
        "INSERT INTO stats_dirty (month, version) "
        f"SELECT strftime('%Y-%m', {row}.submitted_at, '+8 hours'), 1 "
        f"WHERE {row}.submitted_at IS NOT NULL "
        "ON CONFLICT (month) DO UPDATE SET version = version + 1;"
    )


def _restore_sqlite_triggers() -> None:
    """SQLite cannot add a foreign key to a table: the batch above copies the application
    table into a new one, and the statistics triggers on it (0005) go with the old table.
    Create them again, as 0005 did (PostgreSQL altered the table in place and kept them)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS stats_application_{name}")
    op.execute(
        "CREATE TRIGGER stats_application_insert AFTER INSERT ON application "
        f"BEGIN {_sqlite_mark('NEW')} END"
    )
    op.execute(
        "CREATE TRIGGER stats_application_delete AFTER DELETE ON application "
        f"BEGIN {_sqlite_mark('OLD')} END"
    )
    op.execute(
        "CREATE TRIGGER stats_application_update AFTER UPDATE ON application FOR EACH ROW "
        f"BEGIN {_sqlite_mark('OLD')} {_sqlite_mark('NEW')} END"
    )


def upgrade() -> None:
    op.create_table(
        "consent",
        sa.Column("id", _ID, nullable=False),
        sa.Column("firm_id", _ID, nullable=False),
        sa.Column("institution_id", _ID, nullable=False),
        _when("granted_at", nullable=False),
        _when("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["institution_id"], ["institution.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.create_index("ix_consent_firm", ["firm_id", "id"], unique=False)
        batch_op.create_index(
            "uq_consent_active",
            ["firm_id", "institution_id"],
            unique=True,
            postgresql_where=sa.text(_ACTIVE),
            sqlite_where=sa.text(_ACTIVE),
        )
    with op.batch_alter_table("application", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "consent_id",
                _ID,
                sa.ForeignKey("consent.id", ondelete="SET NULL", name="fk_application_consent_id"),
                nullable=True,
            )
        )
        batch_op.create_index("ix_application_consent_id", ["consent_id"], unique=False)
    _restore_sqlite_triggers()
    op.execute(_BACKFILL_CONSENTS)
    op.execute(_LINK_APPLICATIONS)


def downgrade() -> None:
    with op.batch_alter_table("application", schema=None) as batch_op:
        batch_op.drop_index("ix_application_consent_id")
        batch_op.drop_column("consent_id")
    _restore_sqlite_triggers()
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_index("uq_consent_active")
        batch_op.drop_index("ix_consent_firm")
    op.drop_table("consent")
