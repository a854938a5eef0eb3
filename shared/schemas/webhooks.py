"""Webhooks: the public endpoints and deliveries API's bodies and answers, and the event envelope.

An event reaches a receiver as ``Event`` (``{type, timestamp, data}``), signed per the Standard
Webhooks specification; ``data`` carries resource ids, a version and only what the receiver's
tenancy allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from shared.enums import PrincipalRole
from shared.schemas.partial import null_left_out
from shared.types import Flag, ShortText

MAX_URL = 2048


class EventType(StrEnum):
    APPLICATION_SUBMITTED = "application.submitted"
    APPLICATION_WITHDRAWN = "application.withdrawn"
    APPLICATION_DECIDED = "application.decided"
    MATCH_NEW_PRODUCT = "match.new_product"
    MODEL_PROMOTED = "model.promoted"
    FIRM_VERIFICATION_CHANGED = "firm.verification_changed"
    CONSENT_REVOKED = "consent.revoked"
    # Sent by POST /v1/webhooks/endpoints/{id}/test to that endpoint only; not subscribable.
    PING = "webhook.ping"
    # The dispatcher's notice when it disables an endpoint: in that endpoint's delivery log, and
    # sent to the owner's other endpoints that subscribe to it.
    ENDPOINT_DISABLED = "webhook.endpoint_disabled"


SUBSCRIBABLE = tuple(t for t in EventType if t != EventType.PING)

# Who receives each event: an endpoint may subscribe only to what its owner's role is sent.
RECEIVED_BY: Mapping[EventType, PrincipalRole] = MappingProxyType(
    {
        EventType.APPLICATION_SUBMITTED: PrincipalRole.INSTITUTION,
        EventType.APPLICATION_WITHDRAWN: PrincipalRole.INSTITUTION,
        EventType.APPLICATION_DECIDED: PrincipalRole.PORTAL,
        EventType.MATCH_NEW_PRODUCT: PrincipalRole.PORTAL,
        EventType.MODEL_PROMOTED: PrincipalRole.ADMIN,
        EventType.FIRM_VERIFICATION_CHANGED: PrincipalRole.PORTAL,
        EventType.CONSENT_REVOKED: PrincipalRole.INSTITUTION,
    }
)


def not_received(role: PrincipalRole, types: Iterable[EventType]) -> list[EventType]:
    """The event types in ``types`` that a principal of ``role`` is never sent (the notice
    that one of its endpoints was disabled goes to any owner's other endpoints)."""
    return [t for t in types if t != EventType.ENDPOINT_DISABLED and RECEIVED_BY.get(t) != role]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    CANCELLED = "cancelled"


class DisabledReason(StrEnum):
    GONE_410 = "gone_410"
    FAILING_5_DAYS = "failing_5_days"


class Event(BaseModel):
    """The body a receiver gets (signed; receivers dedupe by the webhook-id header)."""

    type: EventType
    timestamp: datetime
    data: dict[str, Any]


CONSENT_REVOKED_NOTICE = (
    "The firm revoked its consent to share its profile with your institution (PIPL art. 15): "
    "stop processing the profile received under this consent and delete your copies of it "
    "(PIPL art. 47). The applications and your decisions on them may stay on record."
)
CONSENT_ERASED_NOTICE = (
    "The firm's profile was erased at its request, which ends its consent to share the profile "
    "with your institution: stop processing the profile received under this consent and delete "
    "your copies of it (PIPL art. 47). The applications and your decisions on them may stay on "
    "record."
)


class ConsentEndReason(StrEnum):
    REVOKED = "revoked"  # the firm's portal revoked the consent
    ERASED = "erased"  # the firm's profile was erased, and its standing consents with it


class ConsentRevokedData(BaseModel):
    """``data`` of ``consent.revoked``, sent to the institution the consent was for: ids and
    dates only, never the firm's profile or credit code (the institution may no longer read
    them). A consent is revoked once, so the event is sent once and carries no version."""

    consent_id: int
    firm_id: int
    institution_id: int
    granted_at: datetime
    revoked_at: datetime
    application_ids: list[int] = Field(
        description="the applications that shared the profile under this consent, oldest first"
    )
    reason: ConsentEndReason = Field(
        default=ConsentEndReason.REVOKED,
        description="revoked: the firm's portal revoked the consent; erased: the firm's profile "
        "was erased (the firm id then names no firm any more)",
    )
    notice: str = CONSENT_REVOKED_NOTICE


def _check_url(value: str) -> str:
    # The scheme and the address are checked by the registry against its settings (shared.ssrf):
    # http and private addresses are allowed only in development.
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    if any(char.isspace() or ord(char) < 32 for char in value):
        raise ValueError("must not contain whitespace or control characters")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    return value


_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
# What _check_url accepts, stated in the schema (a little narrower: an ASCII host name or IPv4
# address); _check_url stays the rule, so the pattern is documentation, not enforced twice.
URL_PATTERN = rf"^https?://[A-Za-z0-9.-]+(:{_PORT})?([/?#][!-~]*)?$"
Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL,
        json_schema_extra={
            "pattern": URL_PATTERN,
            "examples": ["https://portal.example/hooks/finmatch"],
        },
    ),
]
# webhook.ping is sent by the test action only: the schema offers what can be subscribed.
Subscribable = Annotated[
    EventType, WithJsonSchema({"type": "string", "enum": [t.value for t in SUBSCRIBABLE]})
]
EventTypes = Annotated[
    list[Subscribable],
    Field(min_length=1, max_length=len(SUBSCRIBABLE), description="event types to receive"),
]


def _subscribable(value: list[EventType]) -> list[EventType]:
    if EventType.PING in value:
        raise ValueError("webhook.ping is sent by the test action only and cannot be subscribed")
    return sorted(set(value))


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    event_types: EventTypes
    description: ShortText = ""
    enabled: Flag = True

    _url = field_validator("url")(_check_url)
    _types = field_validator("event_types")(_subscribable)


class WebhookEndpointUpdate(BaseModel):
    """PATCH body: the fields given are changed (needs If-Match: the endpoint's version)."""

    model_config = ConfigDict(extra="forbid")

    # Each may be left out, none sent as null (the registry answers 422 "cannot be null").
    url: Url | None = Field(default=None, json_schema_extra=null_left_out)
    event_types: EventTypes | None = Field(default=None, json_schema_extra=null_left_out)
    description: ShortText | None = Field(default=None, json_schema_extra=null_left_out)
    enabled: Flag | None = Field(default=None, json_schema_extra=null_left_out)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[EventType] | None) -> list[EventType] | None:
        return None if value is None else _subscribable(value)


class WebhookEndpointPublic(BaseModel):
    """An endpoint as its owner reads it (never with its secret)."""

    id: int
    url: str
    event_types: list[EventType]
    description: str
    enabled: bool
    disabled_reason: DisabledReason | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="until then the secret before the last rotation also signs"
    )
    version: int
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpointPublic):
    """The answer of create and rotate-secret: the only times the secret is shown."""

    secret: str = Field(description='"whsec_" + base64: verify signatures with it')


class WebhookAttemptPublic(BaseModel):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str = Field(description="the start of the answer's body, truncated")


class WebhookDeliveryPublic(BaseModel):
    """One event to one endpoint; its id is the webhook-id header's ``msg_<id>``."""

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
    attempt_log: list[WebhookAttemptPublic] = Field(default_factory=list)


def webhook_id(event_id: int, endpoint_id: int) -> str:
    """The webhook-id header of a delivery: the same on every retry, so receivers dedupe by it.

    Made of the event's and the endpoint's ids, not the delivery row's: on SQLite a deleted
    endpoint's deliveries free their row ids for the next ones, which would reuse a
    webhook-id. An event goes once to each endpoint, and an endpoint that takes a freed id
    only receives events that are newer than it.
    """
    return f"msg_{event_id}_{endpoint_id}"
