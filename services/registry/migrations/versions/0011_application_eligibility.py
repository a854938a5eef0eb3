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
    with op.batch_alter_table("application", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "eligibility_status",
                sa.String(length=12),
                nullable=False,
                server_default="unknown",
            )
        )
        batch_op.add_column(
            sa.Column("eligibility_unmet", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("application", schema=None) as batch_op:
        batch_op.drop_column("eligibility_unmet")
        batch_op.drop_column("eligibility_status")
