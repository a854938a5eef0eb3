"""Matching-model versions: artifacts every matching replica can load, and which one serves."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.registry.models.columns import BigId, UtcDateTime, utcnow


class ModelStatus(StrEnum):
    CANDIDATE = "candidate"
    CHAMPION = "champion"
    RETIRED = "retired"


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_version"
    # At most one champion, enforced by the database whatever the callers do.
    __table_args__ = (
        sa.Index(
            "uq_model_version_one_champion",
            "status",
            unique=True,
            postgresql_where=sa.text("status = 'champion'"),
            sqlite_where=sa.text("status = 'champion'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    version: str = Field(max_length=64, unique=True)
    status: str = Field(default=ModelStatus.CANDIDATE.value, max_length=16, index=True)
    algorithm: str = Field(max_length=64)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    meta: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    # Signed by the matching service (HMAC); the registry only stores the bytes.
    artifact: bytes = Field(sa_type=sa.LargeBinary)
    artifact_sha256: str = Field(max_length=64)
    size_bytes: int
    previous_version: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    promoted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ModelVersionPublic(SQLModel):
    version: str
    status: ModelStatus
    algorithm: str
    metrics: dict[str, Any]
    meta: dict[str, Any]
    artifact_sha256: str
    size_bytes: int
    previous_version: str | None
    created_at: datetime
    promoted_at: datetime | None
