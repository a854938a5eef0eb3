"""Applications carry the eligibility matching's rules gave at submission.

Revision ID: 0011
Revises: 0010
Create Date: 2027-02-04 10:00:00

Applications submitted before this revision were not checked: their status is ``unknown``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: SQLite keeps the application table and the statistics
    # triggers on it (a batch "move and copy" would drop them).
    op.add_column(
        "application",
        sa.Column(
            "eligibility_status", sa.String(length=12), nullable=False, server_default="unknown"
        ),
    )
    op.add_column(
        "application",
        sa.Column("eligibility_unmet", sa.JSON(), nullable=False, server_default="[]"),
    )


def downgrade() -> None:
    op.drop_column("application", "eligibility_unmet")
    op.drop_column("application", "eligibility_status")
