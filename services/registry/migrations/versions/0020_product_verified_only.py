"""product.verified_only: the criteria a product accepts only from an official register.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 12:00:00

A plain ADD COLUMN with a server default (no batch mode: the product table carries
statistics triggers), so existing products keep accepting declared attributes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "product",
        sa.Column("verified_only", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    op.drop_column("product", "verified_only")
