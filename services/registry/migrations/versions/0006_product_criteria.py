"""Product criteria banks set that could not be said before.

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-10 10:00:00

min_invention_patents (invention patents only; min_patents keeps counting invention + utility),
min_trademarks (trademark pledge loans), max_years_established (start-up products) and
min_total_assets_yuan. All nullable: an existing product sets none of them. Plain ADD COLUMN
on both backends, so SQLite keeps the product table (and the stats triggers on it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("max_years_established", sa.Integer()),
    ("min_total_assets_yuan", sa.BigInteger()),
    ("min_invention_patents", sa.Integer()),
    ("min_trademarks", sa.Integer()),
)


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("product", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("product", name)
