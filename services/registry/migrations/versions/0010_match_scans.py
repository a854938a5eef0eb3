"""Proactive matching: a scan per product listed or changed, for match.new_product events.

Revision ID: 0010
Revises: 0009
Create Date: 2027-02-03 10:00:00

A product's create or change writes a pending scan in its transaction; the dispatcher pages
through the consenting firms with a stated need and tells each one the product newly reaches.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import services.registry.models.columns

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, *, nullable: bool) -> sa.Column:
    return sa.Column(
        name, services.registry.models.columns.UtcDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "match_scan",
        sa.Column("id", _ID, nullable=False),
        sa.Column("product_id", _ID, nullable=False),
        sa.Column("product_version", sa.Integer(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cursor_firm_id", _ID, nullable=False),
        sa.Column("notified", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("next_attempt_at", nullable=False),
        _when("lease_until", nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        _when("created_at", nullable=False),
        _when("finished_at", nullable=True),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("match_scan", schema=None) as batch_op:
        batch_op.create_index("ix_match_scan_product_id", ["product_id"], unique=False)
        batch_op.create_index(
            "ix_match_scan_status_next_attempt", ["status", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("match_scan", schema=None) as batch_op:
        batch_op.drop_index("ix_match_scan_status_next_attempt")
        batch_op.drop_index("ix_match_scan_product_id")
    op.drop_table("match_scan")
