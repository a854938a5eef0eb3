"""Training jobs: one row per "train a challenger", kept by the registry for every replica."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.registry.models.columns import BigId, UtcDateTime, utcnow

ACTIVE_WHERE = "status IN ('queued', 'running')"


class TrainingJob(SQLModel, table=True):
    __tablename__ = "training_job"
    # One queued or running job at a time, whichever replica asks: the database decides.
    __table_args__ = (
        sa.Index(
            "uq_training_job_one_active",
            "kind",
            unique=True,
            postgresql_where=sa.text(ACTIVE_WHERE),
            sqlite_where=sa.text(ACTIVE_WHERE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    kind: str = Field(default="train", max_length=16)  # what the one-active index is over
    status: str = Field(max_length=16, index=True)
    trigger: str = Field(max_length=16)
    requested_by: int | None = Field(default=None, sa_type=BigId)
    auto_promote: bool = True
    runner: str = Field(max_length=128)
    stage: str = Field(default="queued", max_length=32)
    progress: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Past this without a heartbeat the runner is presumed dead and the job fails.
    lease_until: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    metrics: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    refit: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    outcome: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    error: str | None = Field(default=None, max_length=2000)
