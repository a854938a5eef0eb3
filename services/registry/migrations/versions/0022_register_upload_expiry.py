"""register_upload.active_at and expired_at: abandoned uploads are expired and their rows deleted.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 12:00:00

Two nullable columns added in place (no batch mode). ``active_at`` is the upload's last sign of
life (creation, a resend opening it, a batch staged): the uploads open before this revision get
their last staged batch's time, or their creation. ``expired_at`` is set when the sweep
(services/registry/registers/sweep.py) expires an upload; its status is then ``expired``.
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import services.registry.models.columns

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str) -> sa.Column[datetime]:
    return sa.Column(
        name, services.registry.models.columns.UtcDateTime(timezone=True), nullable=True
    )


def upgrade() -> None:
    op.add_column("register_upload", _when("active_at"))
    op.add_column("register_upload", _when("expired_at"))
    op.execute(
        "UPDATE register_upload SET active_at = COALESCE("
        "(SELECT max(b.committed_at) FROM import_batch b"
        " WHERE b.principal_id = register_upload.principal_id"
        " AND b.import_id = 'register-upload:' || register_upload.id), created_at)"
    )


def downgrade() -> None:
    op.drop_column("register_upload", "expired_at")
    op.drop_column("register_upload", "active_at")
