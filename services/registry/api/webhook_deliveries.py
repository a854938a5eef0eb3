"""Webhook deliveries: the log of each event sent to one's own endpoints, and redelivery."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import col, select

from services.registry import audit, events
from services.registry.api.deps import IdPath, PrincipalDep, RequestIdDep, SessionDep
from services.registry.idempotency import IdempotentWriteRoute
from services.registry.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from services.registry.pagination import decode_cursor, next_cursor
from services.registry.webhooks import attempts_of, delivery_public, endpoint_owned_by
from shared.errors import NotFound
from shared.schemas.page import Page
from shared.schemas.webhooks import DeliveryStatus, WebhookDeliveryPublic

router = APIRouter(
    prefix="/v1/webhooks/deliveries", tags=["webhooks"], route_class=IdempotentWriteRoute
)


@router.get("", response_model=Page[WebhookDeliveryPublic])
def list_deliveries(
    session: SessionDep,
    principal: PrincipalDep,
    endpoint_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Deliveries to the caller's endpoints, oldest first, each with its attempts."""
    stmt = (
        select(WebhookDelivery, OutboxEvent.type)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .join(OutboxEvent, col(OutboxEvent.id) == col(WebhookDelivery.event_id))
        .where(WebhookEndpoint.owner_principal_id == principal.id)
    )
    if endpoint_id is not None:
        endpoint_owned_by(session, endpoint_id, principal, field="endpoint_id")
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status.value)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(col(WebhookDelivery.id) > after)
    rows = list(session.exec(stmt.order_by(col(WebhookDelivery.id)).limit(limit)))
    deliveries = [delivery for delivery, _ in rows]
    attempts = attempts_of(session, [d.id for d in deliveries if d.id is not None])
    data = [
        delivery_public(delivery, event_type, attempts[delivery.id or 0])
        for delivery, event_type in rows
    ]
    return {"data": data, "next_cursor": next_cursor(deliveries, limit)}


@router.post("/{delivery_id}/redeliver", response_model=WebhookDeliveryPublic, status_code=202)
def redeliver(
    delivery_id: IdPath, session: SessionDep, principal: PrincipalDep, request_id: RequestIdDep
) -> WebhookDeliveryPublic:
    """A new pending delivery of the same event to the same endpoint (a new webhook-id)."""
    original = session.get(WebhookDelivery, delivery_id)
    if original is None:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    endpoint = session.get(WebhookEndpoint, original.endpoint_id)
    if endpoint is None or endpoint.owner_principal_id != principal.id:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    # Locked against the dispatcher's retention clean-up, which skips locked events: the new
    # delivery refers to it. Gone already (its deliveries expired meanwhile): nothing to send.
    event = session.get(
        OutboxEvent, original.event_id, with_for_update={"key_share": True, "read": True}
    )
    if event is None:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    delivery = events.enqueue(session, event, endpoint)
    session.flush()
    audit.record(
        session,
        principal_id=principal.id,
        action="redeliver",
        entity="webhook_delivery",
        entity_id=delivery_id,
        request_id=request_id,
        detail={"delivery_id": delivery.id},
    )
    session.commit()
    return delivery_public(delivery, event.type, [])
