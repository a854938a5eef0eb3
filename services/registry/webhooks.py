"""Webhook endpoints and deliveries as their owner sees them: ownership, secrets, answers."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence

from sqlmodel import Session, col, select

from services.registry.config import RegistrySettings
from services.registry.models import Principal, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from shared.enums import PrincipalRole
from shared.error_codes import ErrorCode
from shared.errors import NotFound, Unprocessable
from shared.schemas.webhooks import (
    RECEIVED_BY,
    DeliveryStatus,
    EventType,
    WebhookAttemptPublic,
    WebhookDeliveryPublic,
    not_received,
    webhook_id,
)
from shared.ssrf import UnsafeTarget, check_url


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def checked_url(url: str, settings: RegistrySettings) -> None:
    """422 naming ``url`` unless it is https to a public address (or private targets are
    allowed). Resolves the name: call it from a worker thread, not the event loop."""
    try:
        check_url(url, allow_private=settings.webhook_private_targets_allowed)
    except UnsafeTarget as exc:
        raise Unprocessable(f"url {exc}", field="url", code=ErrorCode.UNSAFE_WEBHOOK_URL) from exc


def check_receivable(principal: Principal, types: Sequence[EventType]) -> None:
    """422 naming ``event_types`` when the principal's role is never sent one of them (an
    institution gets its products' applications and the revocations of its consents; a
    portal decisions, new matches and verification changes for its firms; an admin model
    promotions)."""
    role = PrincipalRole(principal.role)
    refused = not_received(role, types)
    if refused:
        names = ", ".join(f"{t} (sent to {RECEIVED_BY[t]} principals)" for t in refused)
        raise Unprocessable(
            f"event_types: a {role} principal is never sent {names}",
            field="event_types",
            code=ErrorCode.EVENT_TYPE_NOT_RECEIVED,
        )


def endpoint_owned_by(
    session: Session,
    endpoint_id: int,
    principal: Principal,
    *,
    lock: bool = False,
    field: str | None = None,
) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=lock)
    if endpoint is None or endpoint.owner_principal_id != principal.id:
        raise NotFound(f"webhook endpoint {endpoint_id} not found", field=field)
    return endpoint


def delivery_public(
    delivery: WebhookDelivery, event_type: str, attempts: Sequence[WebhookAttempt]
) -> WebhookDeliveryPublic:
    assert delivery.id is not None
    return WebhookDeliveryPublic(
        id=delivery.id,
        webhook_id=webhook_id(delivery.event_id, delivery.endpoint_id),
        event_id=delivery.event_id,
        event_type=EventType(event_type),
        endpoint_id=delivery.endpoint_id,
        status=DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status_code=delivery.last_status_code,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        attempt_log=[
            WebhookAttemptPublic.model_validate(a, from_attributes=True) for a in attempts
        ],
    )


def attempts_of(session: Session, delivery_ids: Sequence[int]) -> dict[int, list[WebhookAttempt]]:
    """The attempts of these deliveries, oldest first (one query for a page)."""
    out: dict[int, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if not delivery_ids:
        return out
    rows = session.exec(
        select(WebhookAttempt)
        .where(col(WebhookAttempt.delivery_id).in_(list(delivery_ids)))
        .order_by(col(WebhookAttempt.id))
    )
    for attempt in rows:
        out[attempt.delivery_id].append(attempt)
    return out
