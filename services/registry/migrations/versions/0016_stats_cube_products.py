"""Statistics cube per product with eligibility counts (/v1/stats/products from the cube).

Revision ID: 0016
Revises: 0015
Create Date: 2027-03-02 10:00:00

``stats_cube_by`` gains the applications' counts by eligibility status (eligible, ineligible,
unknown), filled in the new per-product cells (dimension ``product``, the city and each town),
so that applications per product are read from a few hundred rows per month instead of every
application. The cube is derived data: every month with applications is marked dirty and
rebuilt by the next statistics query (or the prestart step's ``stats-refresh``). Only
``stats_cube_by`` is altered (ADD COLUMN in place); it carries no statistics trigger.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ELIGIBILITY = ("eligible", "ineligible", "unknown")


def _mark_application_months() -> None:
    """Every month with applications is dirty: its product cells are built by the next query."""
    if op.get_bind().dialect.name == "postgresql":
        month = "to_char(submitted_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"
    else:
        month = "strftime('%Y-%m', submitted_at, '+8 hours')"
    # "WHERE true": SQLite needs it to parse an upsert after a SELECT.
    op.execute(
        f"INSERT INTO stats_dirty (month, version) SELECT DISTINCT {month}, 1 FROM application "
        "WHERE submitted_at IS NOT NULL "
        "ON CONFLICT (month) DO UPDATE SET version = stats_dirty.version + 1"
    )


def upgrade() -> None:
    for name in ELIGIBILITY:
        op.add_column(
            "stats_cube_by", sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
        )
    _mark_application_months()


def downgrade() -> None:
    op.execute("DELETE FROM stats_cube_by WHERE dimension = 'product'")
    for name in ELIGIBILITY:
        op.drop_column("stats_cube_by", name)  # SQLite ≥ 3.35: in place, no rebuild
