"""Principals (who acts), their hashed API keys, the audit log, match events, import batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.registry.models.columns import BigId, UtcDateTime, utcnow


class Principal(SQLModel, table=True):
    __tablename__ = "principal"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    role: str = Field(max_length=16)
    name: str = Field(max_length=200)
    institution_id: int | None = Field(default=None, foreign_key="institution.id", sa_type=BigId)
    town_code: str | None = Field(default=None, max_length=9)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ApiKey(SQLModel, table=True):
    """Only a SHA-256 digest of the key is kept; the key itself is shown once at creation."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    principal_id: int = Field(foreign_key="principal.id", sa_type=BigId, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16, description="first characters, to recognise a key")
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Written when the gateway resolves the key, at most once a minute (see api/access.py).
    last_used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class AuditEntry(SQLModel, table=True):
    """Append-only record of every write: who, what, when (PostgreSQL forbids edits by trigger)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    principal_id: int | None = Field(default=None, sa_type=BigId)
    action: str = Field(max_length=32)
    entity: str = Field(max_length=32)
    entity_id: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class MatchEvent(SQLModel, table=True):
    """A product shown to a firm at a rank: the base of "matched" statistics."""

    __tablename__ = "match_event"
    __table_args__ = (
        sa.Index("ix_match_event_firm_at", "firm_id", "created_at"),
        # "Firms matched" in a period: an index-only scan on PostgreSQL.
        sa.Index(
            "ix_match_event_at",
            "created_at",
            postgresql_include=["firm_id", "town_code", "product_id"],
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    firm_id: int | None = Field(
        default=None,
        sa_column=sa.Column(BigId, sa.ForeignKey("firm.id", ondelete="SET NULL")),
    )
    product_id: int = Field(foreign_key="product.id", sa_type=BigId)
    rank: int
    score: float
    approval_probability: float | None = None
    eligible: bool = True
    model_version: str = Field(max_length=64)
    degraded: bool = False
    town_code: str = Field(max_length=9)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ImportBatch(SQLModel, table=True):
    """A committed batch of a bulk import, so that a resumed import skips what is done."""

    __tablename__ = "import_batch"

    principal_id: int = Field(foreign_key="principal.id", sa_type=BigId, primary_key=True)
    import_id: str = Field(max_length=64, primary_key=True)
    batch_no: int = Field(primary_key=True)
    first_line: int
    line_count: int
    digest: str = Field(max_length=64)
    committed_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
