"""Idempotency records: a keyed write's answer, committed in the same transaction as the write."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.registry.models.columns import BigId, UtcDateTime, utcnow


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"
    # The constraint that makes a second write with the same key fail, whichever gateway
    # replica sent it and whatever Redis remembers.
    __table_args__ = (
        sa.UniqueConstraint(
            "principal_id", "idempotency_key", "operation", name="uq_idempotency_record_slot"
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    principal_id: int = Field(sa_type=sa.BigInteger)
    idempotency_key: str = Field(max_length=255)
    # The registry call ("POST /v1/products"): one public request may make several writes.
    operation: str = Field(max_length=512)
    fingerprint: str = Field(max_length=64)  # of the public request, computed by the gateway
    status: int
    headers: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)
    body: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
