"""API keys: an optional expiry, and when each was last used.

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-20 10:00:00

expires_at (set at creation; a key past it is refused as expired) and last_used_at (written
when the gateway resolves the key, at most once a minute). Both nullable: an existing key
never expires and has not been seen in use yet. Plain ADD COLUMN on both backends.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.registry.models.columns import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("expires_at", "last_used_at")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("api_key", sa.Column(name, UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("api_key", name)
