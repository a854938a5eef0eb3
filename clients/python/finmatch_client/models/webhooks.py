"""Webhook endpoints, their deliveries, and the event a receiver gets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from finmatch_client.models._base import Answer, Body
from finmatch_client.models.enums import DeliveryStatus, DisabledReason, EventType


class WebhookEndpointCreate(Body):
    """An https URL on a public address; the event types its owner's role may receive."""

    url: str
    event_types: list[EventType]
    description: str = ""
    enabled: bool = True


class WebhookEndpointUpdate(Body):
    """A partial update: only the fields you set are sent."""

    url: str | None = None
    event_types: list[EventType] | None = None
    description: str | None = None
    enabled: bool | None = None


class WebhookEndpointPublic(Answer):
    """An endpoint as its owner reads it (never with its secret); ``version`` is its ETag."""

    id: int
    url: str
    event_types: list[EventType]
    description: str
    enabled: bool
    disabled_reason: DisabledReason | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpointPublic):
    """The answer of create and rotate-secret: the only times the secret is shown."""

    secret: str


class WebhookAttemptPublic(Answer):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str


class WebhookDeliveryPublic(Answer):
    """One event to one endpoint; ``webhook_id`` is the webhook-id header it is sent with."""

    id: int
    webhook_id: str
    event_id: int
    event_type: EventType
    endpoint_id: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[WebhookAttemptPublic] | None = None


class WebhookEvent(Answer):
    """A verified event. ``id`` is the webhook-id header, the same on every retry of one
    delivery: dedupe by it. ``data`` holds resource ids, a version and only what your role
    may see."""

    id: str
    type: EventType
    timestamp: datetime
    data: dict[str, Any]
