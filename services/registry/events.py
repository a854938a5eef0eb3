"""The transactional outbox: events written in the same transaction as the change causing them.

``emit`` adds an ``outbox_event`` and one pending ``webhook_delivery`` per enabled endpoint,
subscribed to its type, whose owner is in the event's audience. It only adds to the caller's
session: the caller's commit writes the change and its event together, or neither. The
dispatcher (services/registry/dispatcher/) sends what is pending.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from services.registry.models import (
    Application,
    Consent,
    Decision,
    Firm,
    OutboxEvent,
    Principal,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.registry.models.columns import utcnow
from services.registry.registers.provenance import firm_public
from shared.enums import PrincipalRole
from shared.schemas.application import ApplicationPublic, DecisionPublic
from shared.schemas.webhooks import (
    CONSENT_ERASED_NOTICE,
    CONSENT_REVOKED_NOTICE,
    ConsentEndReason,
    ConsentRevokedData,
    DeliveryStatus,
    Event,
    EventType,
)


def emit(
    session: Session, type: EventType, data: dict[str, Any], audience: Iterable[int]
) -> OutboxEvent:
    """Record an event for the principals in ``audience`` (the only ones whose endpoints get
    it); flushed, not committed."""
    event = OutboxEvent(type=type.value, data=data, created_at=utcnow())
    session.add(event)
    session.flush()
    owners = sorted(set(audience))
    if owners:
        endpoints = session.exec(
            select(WebhookEndpoint)
            .where(col(WebhookEndpoint.owner_principal_id).in_(owners))
            .where(col(WebhookEndpoint.enabled).is_(True))
            .order_by(col(WebhookEndpoint.id))
        )
        # The subscriptions are a JSON list (portable across SQLite and PostgreSQL), and a
        # principal has few endpoints: filter here.
        for endpoint in endpoints:
            if type.value in endpoint.event_types:
                enqueue(session, event, endpoint)
    session.flush()
    return event


def enqueue(session: Session, event: OutboxEvent, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A new pending delivery of ``event`` to ``endpoint``, due now."""
    assert event.id is not None
    assert endpoint.id is not None
    now = utcnow()
    delivery = WebhookDelivery(
        event_id=event.id,
        endpoint_id=endpoint.id,
        status=DeliveryStatus.PENDING.value,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    return delivery


def envelope(event: OutboxEvent) -> Event:
    """The body a receiver gets for ``event``."""
    return Event(type=EventType(event.type), timestamp=event.created_at, data=event.data)


def institution_principals(session: Session, institution_id: int) -> list[int]:
    rows = session.exec(
        select(Principal.id)
        .where(Principal.role == PrincipalRole.INSTITUTION.value)
        .where(Principal.institution_id == institution_id)
    )
    return [principal_id for principal_id in rows if principal_id is not None]


def _application_data(application: Application) -> dict[str, Any]:
    return {
        "application": ApplicationPublic.model_validate(application).model_dump(mode="json"),
        "product_id": application.product_id,
        "version": application.version,
    }


def application_submitted(session: Session, application: Application, firm: Firm) -> OutboxEvent:
    """To the product's institution, with the firm as that institution may read it (the firm
    consented to share its profile with it by applying)."""
    data = _application_data(application)
    data["firm"] = firm_public(session.connection(), firm).model_dump(mode="json")
    audience = institution_principals(session, application.institution_id)
    return emit(session, EventType.APPLICATION_SUBMITTED, data, audience)


def application_withdrawn(session: Session, application: Application) -> OutboxEvent:
    """To the product's institution; the firm's consent ends with it, so no profile."""
    audience = institution_principals(session, application.institution_id)
    return emit(session, EventType.APPLICATION_WITHDRAWN, _application_data(application), audience)


def application_decided(
    session: Session, application: Application, decision: Decision
) -> OutboxEvent:
    """To the portal that applied for the firm."""
    data = _application_data(application)
    data["decision"] = DecisionPublic.model_validate(decision).model_dump(mode="json")
    return emit(session, EventType.APPLICATION_DECIDED, data, [application.owner_principal_id])


def consent_revoked(
    session: Session, consent: Consent, reason: ConsentEndReason = ConsentEndReason.REVOKED
) -> OutboxEvent:
    """To the institution the consent was for: it must stop processing the profile it received
    under it (the firm revoked the consent, or its profile was erased). Ids and dates only: no
    profile, no credit code."""
    assert consent.id is not None
    assert consent.revoked_at is not None
    application_ids = session.exec(
        select(Application.id)
        .where(Application.consent_id == consent.id)
        .order_by(col(Application.id))
    ).all()
    data = ConsentRevokedData(
        consent_id=consent.id,
        firm_id=consent.firm_id,
        institution_id=consent.institution_id,
        granted_at=consent.granted_at,
        revoked_at=consent.revoked_at,
        application_ids=[i for i in application_ids if i is not None],
        reason=reason,
        notice=CONSENT_ERASED_NOTICE
        if reason == ConsentEndReason.ERASED
        else CONSENT_REVOKED_NOTICE,
    )
    audience = institution_principals(session, consent.institution_id)
    return emit(session, EventType.CONSENT_REVOKED, data.model_dump(mode="json"), audience)


def forget_firm(session: Session, firm_id: int, *, institution_id: int | None = None) -> int:
    """Drop a firm's profile from the events that carried it (a pending delivery, or a
    redelivery, then goes without it): every institution's on erasure, one institution's when
    the firm revokes its consent to it. The number of events changed. Both are rare: a scan
    of the firm's submissions is fine."""
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.type == EventType.APPLICATION_SUBMITTED.value)
        .where(col(OutboxEvent.data)["firm"]["id"].as_integer() == firm_id)
    )
    if institution_id is not None:
        stmt = stmt.where(
            col(OutboxEvent.data)["application"]["institution_id"].as_integer() == institution_id
        )
    changed = 0
    for event in session.exec(stmt):
        event.data = {key: value for key, value in event.data.items() if key != "firm"}
        session.add(event)
        changed += 1
    return changed


def admin_principals(session: Session) -> list[int]:
    rows = session.exec(select(Principal.id).where(Principal.role == PrincipalRole.ADMIN.value))
    return [principal_id for principal_id in rows if principal_id is not None]


def model_promoted(
    session: Session, version: str, previous: str | None, *, how: str, actor: int | None
) -> OutboxEvent:
    """To the admins: a model now serves (``how``: promote or rollback)."""
    data = {
        "model_version": version,
        "previous_version": previous,
        "how": how,
        "actor_principal_id": actor,
        "version": 1,
    }
    return emit(session, EventType.MODEL_PROMOTED, data, admin_principals(session))
