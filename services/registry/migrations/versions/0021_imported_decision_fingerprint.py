"""imported_decision.fingerprint: a re-imported past decision is recognised, not written twice.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 13:00:00

A nullable column and a unique index on (institution_id, fingerprint), added in place (no
batch mode: add_column and create_index work on both backends). The rows imported before this
revision keep a NULL fingerprint: NULLs never collide in a unique index, so they stay as they
are, and a later import of the same lines is not recognised as theirs (each is written once
more, then recognised from that import on). They are not fingerprinted here because they may
already hold the same decision twice (one file imported under two import ids), which the
unique index would refuse: choosing which copy training keeps is the institution's call.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "imported_decision", sa.Column("fingerprint", sa.String(length=64), nullable=True)
    )
    op.create_index(
        "uq_imported_decision_fingerprint",
        "imported_decision",
        ["institution_id", "fingerprint"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_imported_decision_fingerprint", table_name="imported_decision")
    op.drop_column("imported_decision", "fingerprint")
