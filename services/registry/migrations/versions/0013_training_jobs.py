"""Training jobs: "train a challenger" runs in the background, its state kept here.

Revision ID: 0013
Revises: 0012
Create Date: 2027-02-10 09:00:00

Every matching replica sees the same jobs, and a job outlives the replica that ran it. A
unique partial index allows one queued or running job at a time.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import services.registry.models.columns

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ACTIVE = "status IN ('queued', 'running')"


def _when(name: str, *, nullable: bool) -> "sa.Column[Any]":
    return sa.Column(
        name, services.registry.models.columns.UtcDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "training_job",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("requested_by", _ID, nullable=True),
        sa.Column("auto_promote", sa.Boolean(), nullable=False),
        sa.Column("runner", sa.String(length=128), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        _when("created_at", nullable=False),
        _when("started_at", nullable=True),
        _when("heartbeat_at", nullable=True),
        _when("lease_until", nullable=False),
        _when("finished_at", nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("refit", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("training_job", schema=None) as batch_op:
        batch_op.create_index("ix_training_job_status", ["status"], unique=False)
        batch_op.create_index(
            "uq_training_job_one_active",
            ["kind"],
            unique=True,
            postgresql_where=sa.text(_ACTIVE),
            sqlite_where=sa.text(_ACTIVE),
        )


def downgrade() -> None:
    with op.batch_alter_table("training_job", schema=None) as batch_op:
        batch_op.drop_index("uq_training_job_one_active")
        batch_op.drop_index("ix_training_job_status")
    op.drop_table("training_job")
