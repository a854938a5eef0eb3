"""Imported past decisions: an institution's history, for training only.

Revision ID: 0014
Revises: 0013
Create Date: 2027-02-14 10:00:00

A table of its own (not ``application``): imported decisions create no firm, no lead and no
event, and no official's statistic counts them. The training export merges them with the live
decisions. The credit code is kept only as a keyed hash.
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import services.registry.models.columns

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str) -> sa.Column[datetime]:
    return sa.Column(
        name, services.registry.models.columns.UtcDateTime(timezone=True), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "imported_decision",
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("approved_amount_yuan", sa.BigInteger(), nullable=True),
        sa.Column("rate_bp", sa.Integer(), nullable=True),
        sa.Column("term_months", sa.Integer(), nullable=True),
        sa.Column("rejection_reason", sa.String(length=32), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("id", _ID, nullable=False),
        sa.Column("institution_id", _ID, nullable=False),
        sa.Column("product_id", _ID, nullable=False),
        sa.Column("imported_by_principal_id", _ID, nullable=False),
        sa.Column("import_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("credit_code_hash", sa.String(length=64), nullable=True),
        sa.Column("requested_amount_yuan", sa.BigInteger(), nullable=False),
        sa.Column("requested_term_months", sa.Integer(), nullable=False),
        sa.Column("firm_snapshot", sa.JSON(), nullable=False),
        sa.Column("product_snapshot", sa.JSON(), nullable=False),
        _when("submitted_at"),
        _when("decided_at"),
        _when("imported_at"),
        sa.ForeignKeyConstraint(["imported_by_principal_id"], ["principal.id"]),
        sa.ForeignKeyConstraint(["institution_id"], ["institution.id"]),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("imported_decision", schema=None) as batch_op:
        batch_op.create_index("ix_imported_decision_decided", ["decided_at", "id"], unique=False)
        batch_op.create_index(
            "ix_imported_decision_institution", ["institution_id", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_imported_decision_product_id"), ["product_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("imported_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imported_decision_product_id"))
        batch_op.drop_index("ix_imported_decision_institution")
        batch_op.drop_index("ix_imported_decision_decided")
    op.drop_table("imported_decision")
