"""Official registers (high-tech, 专精特新, green list, procurement awards): uploads and entries.

Revision ID: 0017
Revises: 0016
Create Date: 2027-03-09 10:00:00

Three new tables and nothing else altered: ``register`` (each kind's published version),
``register_upload`` (one per upload, a version once published) and ``register_entry`` (the
lines, staged by their upload and superseded by a later one, never updated otherwise).
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import services.registry.models.columns

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(
        name, services.registry.models.columns.UtcDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "register_upload",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("upload_id", sa.String(length=64), nullable=False),
        sa.Column("principal_id", _ID, nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("invalid_lines", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=True),
        sa.Column("removed", sa.Integer(), nullable=True),
        sa.Column("changed", sa.Integer(), nullable=True),
        sa.Column("unchanged", sa.Integer(), nullable=True),
        _when("created_at"),
        _when("published_at", nullable=True),
        sa.ForeignKeyConstraint(["principal_id"], ["principal.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("principal_id", "kind", "upload_id", name="uq_register_upload_client"),
        sa.UniqueConstraint("kind", "version", name="uq_register_upload_version"),
    )
    op.create_table(
        "register",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("current_upload", _ID, nullable=True),
        _when("updated_at"),
        sa.ForeignKeyConstraint(["current_upload"], ["register_upload.id"]),
        sa.PrimaryKeyConstraint("kind"),
    )
    op.create_table(
        "register_entry",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("added_in", _ID, nullable=False),
        sa.Column("removed_in", _ID, nullable=True),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("entry_key", sa.String(length=100), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("amount_yuan", sa.BigInteger(), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=True),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["added_in"], ["register_upload.id"]),
        sa.ForeignKeyConstraint(["removed_in"], ["register_upload.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("added_in", "entry_key", name="uq_register_entry_upload_key"),
    )
    op.create_index("ix_register_entry_firm", "register_entry", ["credit_code", "kind"])
    op.create_index("ix_register_entry_key", "register_entry", ["kind", "entry_key"])


def downgrade() -> None:
    op.drop_index("ix_register_entry_key", table_name="register_entry")
    op.drop_index("ix_register_entry_firm", table_name="register_entry")
    op.drop_table("register_entry")
    op.drop_table("register")
    op.drop_table("register_upload")
