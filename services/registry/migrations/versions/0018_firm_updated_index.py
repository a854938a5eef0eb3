"""Index on firm.updated_at: the matching service's firm feed reads the firms changed since.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 10:00:00

The matching service keeps every registered firm as columns and applies the firms written
since its last read (``/internal/feeds/firms`` with ``changed_since``) before each coverage,
what-if or reach answer. Without this index that read is a scan of the whole firm table.
A plain CREATE INDEX (no batch mode: the firm table carries statistics triggers).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_firm_updated", "firm", ["updated_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_firm_updated", table_name="firm")
