"""Webhook endpoints, the transactional outbox of events, and their deliveries and attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.registry.models.columns import BigId, UtcDateTime, utcnow


class WebhookEndpoint(SQLModel, table=True):
    """A URL a principal registered to receive events of some types, with its signing secret."""

    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    owner_principal_id: int = Field(foreign_key="principal.id", sa_type=BigId, index=True)
    url: str = Field(max_length=2048)
    event_types: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    description: str = Field(default="", max_length=500)
    enabled: bool = True
    # "gone_410" (the receiver answered 410), "failing_5_days", or None while enabled by hand.
    disabled_reason: str | None = Field(default=None, max_length=32)
    secret: str = Field(max_length=64)
    # The secret before the last rotation keeps signing beside the new one until it expires.
    previous_secret: str | None = Field(default=None, max_length=64)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The first failed delivery of an unbroken run of failures; None after a success.
    failing_since: datetime | None = Field(default=None, sa_type=UtcDateTime)
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class OutboxEvent(SQLModel, table=True):
    """An event, written in the same transaction as the change that caused it."""

    __tablename__ = "outbox_event"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    type: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class WebhookDelivery(SQLModel, table=True):
    """One event to one endpoint: pending until delivered, dead, or cancelled."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.Index("ix_webhook_delivery_status_next_attempt", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    event_id: int = Field(foreign_key="outbox_event.id", sa_type=BigId, index=True)
    endpoint_id: int = Field(
        sa_column=sa.Column(
            BigId,
            sa.ForeignKey("webhook_endpoint.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    status: str = Field(default="pending", max_length=16)  # pending|delivered|dead|cancelled
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # A dispatcher owns a due delivery until then (see services/registry/dispatcher/).
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_status_code: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery: when, the answer's status, latency and an excerpt."""

    __tablename__ = "webhook_attempt"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    delivery_id: int = Field(
        sa_column=sa.Column(
            BigId,
            sa.ForeignKey("webhook_delivery.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    status_code: int | None = None
    latency_ms: int = 0
    error: str | None = Field(default=None, max_length=200)
    response_excerpt: str = Field(default="", max_length=1024)


class MatchScan(SQLModel, table=True):
    """Proactive matching's to-do: a product listed or changed, whose newly reached firms are
    still to be found and told (``match.new_product``).

    Written in the product's transaction. The dispatcher pages through the consenting firms
    with a stated need (``cursor_firm_id`` is the last firm done), asks matching which of each
    page newly qualify, and writes their events in the transaction that moves the cursor: a
    crash repeats no page and skips none.
    """

    __tablename__ = "match_scan"
    __table_args__ = (sa.Index("ix_match_scan_status_next_attempt", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    product_id: int = Field(
        sa_column=sa.Column(
            BigId, sa.ForeignKey("product.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    product_version: int
    # The product as matching ranks it (ProductFeatures) before the change (None: it was not
    # listed, so every firm that qualifies now is new to it) and after.
    before: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    after: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    status: str = Field(default="pending", max_length=16)  # pending|done|superseded
    cursor_firm_id: int = Field(default=0, sa_type=BigId)
    notified: int = 0
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
