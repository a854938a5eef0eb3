"""Statistics: the decision's amount and rate on the application, and a covering index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATS_COLUMNS = [
    "town_code",
    "status",
    "product_id",
    "institution_id",
    "firm_id",
    "size_class",
    "industry_section",
    "is_first_loan",
    "requested_amount_yuan",
    "approved_amount_yuan",
    "approved_rate_bp",
    "decided_at",
]


def upgrade() -> None:
    with op.batch_alter_table("application", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approved_amount_yuan", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("approved_rate_bp", sa.Integer(), nullable=True))
    # Decisions made before this revision: copy their amount and rate over.
    op.execute(
        """
        UPDATE application SET
            approved_amount_yuan = (
                SELECT d.approved_amount_yuan FROM decision d
                WHERE d.application_id = application.id AND d.outcome = 'approved'
            ),
            approved_rate_bp = (
                SELECT d.rate_bp FROM decision d
                WHERE d.application_id = application.id AND d.outcome = 'approved'
            )
        WHERE status = 'approved'
        """
    )
    with op.batch_alter_table("application", schema=None) as batch_op:
        batch_op.create_index(
            "ix_application_stats",
            ["submitted_at"],
            unique=False,
            postgresql_include=STATS_COLUMNS,
        )
    with op.batch_alter_table("match_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_match_event_at",
            ["created_at"],
            unique=False,
            postgresql_include=["firm_id", "town_code", "product_id"],
        )
    with op.batch_alter_table("firm", schema=None) as batch_op:
        batch_op.create_index("ix_firm_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("firm", schema=None) as batch_op:
        batch_op.drop_index("ix_firm_created")
    with op.batch_alter_table("match_event", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_match_event_at", postgresql_include=["firm_id", "town_code", "product_id"]
        )
    with op.batch_alter_table("application", schema=None) as batch_op:
        batch_op.drop_index("ix_application_stats", postgresql_include=STATS_COLUMNS)
        batch_op.drop_column("approved_rate_bp")
        batch_op.drop_column("approved_amount_yuan")
