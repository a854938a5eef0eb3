"""Webhook endpoints: any principal registers its own; others' ids are 404 like missing ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from sqlmodel import Session, func, select

from services.registry import audit, events
from services.registry.api.deps import (
    IdPath,
    PrincipalDep,
    RequestIdDep,
    SessionDep,
    SettingsDep,
)
from services.registry.api.firms import parse_if_match
from services.registry.idempotency import IdempotentWriteRoute
from services.registry.models import Principal, WebhookEndpoint
from services.registry.models.columns import utcnow
from services.registry.pagination import page_of
from services.registry.webhooks import (
    check_receivable,
    checked_url,
    delivery_public,
    endpoint_owned_by,
    new_secret,
)
from shared.error_codes import ErrorCode
from shared.errors import Conflict, PreconditionFailed, Unprocessable
from shared.schemas.page import Page
from shared.schemas.webhooks import (
    EventType,
    WebhookDeliveryPublic,
    WebhookEndpointCreate,
    WebhookEndpointPublic,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=IdempotentWriteRoute)

# The old secret keeps signing beside the new one this long after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)


def etag(endpoint: WebhookEndpoint) -> str:
    return f'"{endpoint.version}"'


def _record(
    session: Session,
    principal: Principal,
    action: str,
    entity_id: int | None,
    request_id: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        principal_id=principal.id,
        action=action,
        entity="webhook_endpoint",
        entity_id=entity_id,
        request_id=request_id,
        detail=detail,
    )


# An answer holding a secret: no cache keeps it, and no idempotency record keeps its body (a
# repeat of its Idempotency-Key is 409 idempotency_secret_not_replayed).
SECRET_CACHE_CONTROL = "no-store"


@router.post("/endpoints", response_model=WebhookEndpointWithSecret, status_code=201)
def create_endpoint(
    body: WebhookEndpointCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    response: Response,
) -> WebhookEndpointWithSecret:
    """The answer holds the secret: it is shown here and on rotation only."""
    check_receivable(principal, body.event_types)
    checked_url(body.url, settings)
    held = session.exec(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.owner_principal_id == principal.id)
    ).one()
    if held >= settings.webhook_max_endpoints:
        raise Conflict(
            f"a principal keeps at most {settings.webhook_max_endpoints} webhook endpoints",
            code=ErrorCode.TOO_MANY_ENDPOINTS,
        )
    now = utcnow()
    endpoint = WebhookEndpoint(
        owner_principal_id=principal.id or 0,
        url=body.url,
        event_types=[str(t) for t in body.event_types],
        description=body.description,
        enabled=body.enabled,
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    _record(session, principal, "create", endpoint.id, request_id, {"url": body.url})
    session.commit()
    response.headers["ETag"] = etag(endpoint)
    response.headers["Cache-Control"] = SECRET_CACHE_CONTROL
    return WebhookEndpointWithSecret.model_validate(endpoint, from_attributes=True)


@router.get("/endpoints", response_model=Page[WebhookEndpointPublic])
def list_endpoints(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.owner_principal_id == principal.id)
    return page_of(session, stmt, WebhookEndpoint.id, limit=limit, cursor=cursor)


@router.get("/endpoints/{endpoint_id}", response_model=WebhookEndpointPublic)
def get_endpoint(
    endpoint_id: IdPath, session: SessionDep, principal: PrincipalDep, response: Response
) -> WebhookEndpoint:
    endpoint = endpoint_owned_by(session, endpoint_id, principal)
    response.headers["ETag"] = etag(endpoint)
    return endpoint


@router.patch("/endpoints/{endpoint_id}", response_model=WebhookEndpointPublic)
def update_endpoint(
    endpoint_id: IdPath,
    body: WebhookEndpointUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> WebhookEndpoint:
    """Only the fields given change; If-Match is required (428 without, 412 when stale)."""
    changes = body.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None:
            raise Unprocessable(f"{key} cannot be null", field=key)
    endpoint = endpoint_owned_by(session, endpoint_id, principal)  # others' ids: 404 first
    if changes.get("event_types") is not None:
        check_receivable(principal, changes["event_types"])
    expected = parse_if_match(if_match)
    if "url" in changes:
        checked_url(changes["url"], settings)  # resolves the name: before the row is locked
    # Locking the row makes the version check and the write one step on PostgreSQL.
    session.refresh(endpoint, with_for_update=True)
    if expected is not None and endpoint.version != expected:
        raise PreconditionFailed(
            f"webhook endpoint {endpoint_id} is at version {endpoint.version}, not {expected}",
            code=ErrorCode.STALE_VERSION,
        )
    if not changes:  # an empty patch changes nothing: no new version, no audit entry
        response.headers["ETag"] = etag(endpoint)
        return endpoint
    if "event_types" in changes:
        changes["event_types"] = [str(t) for t in changes["event_types"]]
    for key, value in changes.items():
        setattr(endpoint, key, value)
    if "enabled" in changes:
        # Enabled or disabled by hand: an automatic reason and a run of failures no longer hold.
        endpoint.disabled_reason = None
        endpoint.failing_since = None
    endpoint.version += 1
    endpoint.updated_at = utcnow()
    _record(session, principal, "update", endpoint_id, request_id, {"fields": sorted(changes)})
    session.commit()
    response.headers["ETag"] = etag(endpoint)
    return endpoint


@router.delete("/endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(
    endpoint_id: IdPath, session: SessionDep, principal: PrincipalDep, request_id: RequestIdDep
) -> Response:
    """Its deliveries and their attempts go with it (ON DELETE CASCADE)."""
    endpoint = endpoint_owned_by(session, endpoint_id, principal, lock=True)
    session.delete(endpoint)
    _record(session, principal, "delete", endpoint_id, request_id)
    session.commit()
    return Response(status_code=204)


@router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=WebhookEndpointWithSecret)
def rotate_secret(
    endpoint_id: IdPath,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    response: Response,
) -> WebhookEndpointWithSecret:
    """A new secret, shown once; the old one also signs for 24 hours."""
    endpoint = endpoint_owned_by(session, endpoint_id, principal, lock=True)
    now = utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    endpoint.version += 1
    endpoint.updated_at = now
    _record(session, principal, "rotate_secret", endpoint_id, request_id)
    session.commit()
    response.headers["ETag"] = etag(endpoint)
    response.headers["Cache-Control"] = SECRET_CACHE_CONTROL
    return WebhookEndpointWithSecret.model_validate(endpoint, from_attributes=True)


@router.post("/endpoints/{endpoint_id}/test", response_model=WebhookDeliveryPublic, status_code=202)
def send_test(
    endpoint_id: IdPath, session: SessionDep, principal: PrincipalDep, request_id: RequestIdDep
) -> WebhookDeliveryPublic:
    """A webhook.ping event to this endpoint only (whatever its subscriptions)."""
    endpoint = endpoint_owned_by(session, endpoint_id, principal)
    event = events.emit(session, EventType.PING, {"endpoint_id": endpoint_id}, audience=())
    delivery = events.enqueue(session, event, endpoint)
    session.flush()
    _record(session, principal, "test", endpoint_id, request_id, {"delivery_id": delivery.id})
    session.commit()
    return delivery_public(delivery, event.type, [])
