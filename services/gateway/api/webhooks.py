"""Webhooks: any principal registers endpoints for the events it may see; its own only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.gateway.api.proxy import (
    ETAG_HEADER,
    UPDATE_RESPONSES,
    IfMatch,
    forward,
)
from services.gateway.auth import CurrentPrincipal
from services.gateway.idempotency import IdempotentRoute
from shared.schemas.page import Cursor, Page
from shared.schemas.webhooks import (
    RECEIVED_BY,
    DeliveryStatus,
    WebhookDeliveryPublic,
    WebhookEndpointCreate,
    WebhookEndpointPublic,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=IdempotentRoute)
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=500)]

DELIVERY_RULES = (
    "Events are delivered at least once (dedupe by the `webhook-id` header, "
    "`msg_<event id>_<endpoint id>`, the same on every retry) and in no particular order "
    "(each carries a timestamp and a version). Each is signed per Standard Webhooks: "
    "`webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>`; "
    "two, space-separated, for 24 hours after a rotation)."
)


def _who_is_sent_what() -> str:
    """The event types each role may subscribe to, read from the rule the registry applies."""
    by_role: dict[str, list[str]] = {}
    for event_type, role in RECEIVED_BY.items():
        by_role.setdefault(role.value, []).append(f"`{event_type}`")
    roles = "; ".join(f"{role}: {', '.join(types)}" for role, types in by_role.items())
    return (
        f"Each role subscribes to what it is sent ({roles}; any role: "
        "`webhook.endpoint_disabled`); anything else is a 422 `event_type_not_received` naming "
        "`event_types`. `consent.revoked` tells an institution that a firm's consent to share "
        "its profile ended (`reason`: `revoked` by the firm, or `erased` with the firm's "
        "profile): `data` has `consent_id`, `firm_id`, `institution_id`, `granted_at`, "
        "`revoked_at`, `application_ids`, `reason` and a `notice`, never the profile; stop "
        "processing the profile received under it and delete your copies. "
    )


@router.post(
    "/endpoints",
    response_model=WebhookEndpointWithSecret,
    status_code=201,
    summary="Register a webhook endpoint / 注册回调地址",
    description="The answer holds the signing `secret`: it is shown here and on rotation only. "
    "The URL must be https to a public address (private, loopback and link-local addresses "
    "are refused: 422 `unsafe_webhook_url`). An unknown event type is a 422 naming "
    "`event_types`. " + _who_is_sent_what() + DELIVERY_RULES,
    responses={201: {"description": "created", "headers": ETAG_HEADER}},
)
async def create_endpoint(
    body: WebhookEndpointCreate, request: Request, principal: CurrentPrincipal
) -> Response:
    return await forward(
        request, "POST", "/v1/webhooks/endpoints", principal, json=body.model_dump(mode="json")
    )


@router.get("/endpoints", response_model=Page[WebhookEndpointPublic])
async def list_endpoints(
    request: Request, principal: CurrentPrincipal, limit: Limit = 50, cursor: Cursor = None
) -> Response:
    params = {"limit": limit, "cursor": cursor}
    return await forward(request, "GET", "/v1/webhooks/endpoints", principal, params=params)


@router.get(
    "/endpoints/{endpoint_id:id}",
    response_model=WebhookEndpointPublic,
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_endpoint(
    endpoint_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    return await forward(request, "GET", f"/v1/webhooks/endpoints/{endpoint_id}", principal)


@router.patch(
    "/endpoints/{endpoint_id:id}", response_model=WebhookEndpointPublic, responses=UPDATE_RESPONSES
)
async def update_endpoint(
    endpoint_id: IdPath,
    body: WebhookEndpointUpdate,
    request: Request,
    principal: CurrentPrincipal,
    if_match: IfMatch = None,
) -> Response:
    """Only the fields given change. Enabling or disabling clears `disabled_reason`."""
    # forward_update's rule (only the fields given, If-Match passed on) for a pydantic body.
    return await forward(
        request,
        "PATCH",
        f"/v1/webhooks/endpoints/{endpoint_id}",
        principal,
        json=body.model_dump(mode="json", exclude_unset=True),
        headers=None if if_match is None else {"If-Match": if_match},
    )


@router.delete("/endpoints/{endpoint_id:id}", status_code=204, response_class=Response)
async def delete_endpoint(
    endpoint_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    """Removes it with its delivery log."""
    return await forward(request, "DELETE", f"/v1/webhooks/endpoints/{endpoint_id}", principal)


@router.post(
    "/endpoints/{endpoint_id:id}/rotate-secret",
    response_model=WebhookEndpointWithSecret,
    summary="Rotate the signing secret / 轮换签名密钥",
)
async def rotate_secret(
    endpoint_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    """A new secret, shown once. For 24 hours the old one signs too (two signatures)."""
    path = f"/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"
    return await forward(request, "POST", path, principal)


@router.post(
    "/endpoints/{endpoint_id:id}/test", response_model=WebhookDeliveryPublic, status_code=202
)
async def send_test(endpoint_id: IdPath, request: Request, principal: CurrentPrincipal) -> Response:
    """Queues a `webhook.ping` event to this endpoint only; the answer is its delivery."""
    path = f"/v1/webhooks/endpoints/{endpoint_id}/test"
    return await forward(request, "POST", path, principal)


@router.get("/deliveries", response_model=Page[WebhookDeliveryPublic])
async def list_deliveries(
    request: Request,
    principal: CurrentPrincipal,
    endpoint_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    status: DeliveryStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Deliveries to your endpoints, oldest first, each with its attempts (time, status
    code, latency and the start of the answer). `dead`: retries ran out (redeliver it)."""
    params = {"endpoint_id": endpoint_id, "status": status, "limit": limit, "cursor": cursor}
    return await forward(request, "GET", "/v1/webhooks/deliveries", principal, params=params)


@router.post(
    "/deliveries/{delivery_id:id}/redeliver", response_model=WebhookDeliveryPublic, status_code=202
)
async def redeliver(delivery_id: IdPath, request: Request, principal: CurrentPrincipal) -> Response:
    """Queues the same event to the same endpoint again (a new delivery and webhook-id)."""
    path = f"/v1/webhooks/deliveries/{delivery_id}/redeliver"
    return await forward(request, "POST", path, principal)
