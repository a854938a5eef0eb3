"""The transactional outbox: an application change commits if and only if its event does."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.registry.api import applications as applications_api
from services.registry.models import Application, OutboxEvent, Principal, WebhookDelivery
from tests.registry import data
from tests.registry.conftest import Actor, make_principal
from tests.registry.test_applications import apply, setup_firm_and_product
from tests.registry.test_webhooks import create


def subscribe(actor: Actor, *types: str, enabled: bool = True) -> int:
    return int(create(actor, event_types=list(types), enabled=enabled)["id"])


def deliveries(engine: Engine) -> list[tuple[str, int, dict[str, Any]]]:
    """(event type, endpoint id, event data) of every delivery, in order."""
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxEvent.type, WebhookDelivery.endpoint_id, OutboxEvent.data)
            .join(WebhookDelivery, col(WebhookDelivery.event_id) == col(OutboxEvent.id))
            .order_by(col(WebhookDelivery.id))
        )
        return [(t, e, d) for t, e, d in rows]


def events_of(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxEvent.type).order_by(col(OutboxEvent.id))))


def colleague_of(admin: Actor, bank: Actor, engine: Engine) -> Actor:
    with Session(engine) as session:
        principal = session.get(Principal, bank.id)
        assert principal is not None
        institution_id = principal.institution_id
    return make_principal(admin, "institution", institution_id=institution_id)


def test_submission_goes_to_the_subscribed_endpoints_of_that_institution_only(
    admin: Actor, portal: Actor, bank: Actor, other_bank: Actor, engine: Engine
) -> None:
    colleague = colleague_of(admin, bank, engine)
    leads = subscribe(bank, "application.submitted")
    colleague_leads = subscribe(colleague, "application.submitted", "application.withdrawn")
    subscribe(colleague, "application.withdrawn")  # another type
    subscribe(bank, "application.submitted", enabled=False)
    subscribe(other_bank, "application.submitted")
    firm_id, product_id = setup_firm_and_product(portal, bank)
    application = apply(portal, firm_id, product_id)

    assert events_of(engine) == ["application.submitted"]
    sent = deliveries(engine)
    assert [(t, e) for t, e, _ in sent] == [
        ("application.submitted", leads),
        ("application.submitted", colleague_leads),
    ]
    data = sent[0][2]
    assert data["application"] == bank.get(f"/v1/applications/{application['id']}").json()
    assert data["product_id"] == product_id
    assert data["version"] == application["version"]
    assert data["firm"] == bank.get(f"/v1/firms/{firm_id}").json()


def test_withdrawal_goes_to_the_institution_without_the_profile(
    portal: Actor, bank: Actor, engine: Engine
) -> None:
    endpoint = subscribe(bank, "application.withdrawn")
    firm_id, product_id = setup_firm_and_product(portal, bank)
    application = apply(portal, firm_id, product_id)
    assert portal.post(f"/v1/applications/{application['id']}/withdraw").status_code == 200
    assert events_of(engine) == ["application.submitted", "application.withdrawn"]
    [(kind, target, data)] = deliveries(engine)
    assert (kind, target) == ("application.withdrawn", endpoint)
    assert data["application"]["status"] == "withdrawn"
    assert data["version"] == 2
    assert "firm" not in data


def test_a_decision_goes_to_the_portal_that_applied(
    portal: Actor, other_portal: Actor, bank: Actor, engine: Engine
) -> None:
    mine = subscribe(portal, "application.decided")
    subscribe(other_portal, "application.decided")
    firm_id, product_id = setup_firm_and_product(portal, bank)
    application = apply(portal, firm_id, product_id)
    decided = bank.post(
        f"/v1/applications/{application['id']}/decision",
        json={"outcome": "rejected", "rejection_reason": "other"},
    )
    assert decided.status_code == 201, decided.text
    [(kind, target, data)] = deliveries(engine)
    assert (kind, target) == ("application.decided", mine)
    assert data["application"]["status"] == "rejected"
    assert data["decision"] == decided.json()
    assert "firm" not in data


def test_a_failure_after_emit_leaves_neither_the_application_nor_its_event(
    admin: Actor,
    portal: Actor,
    bank: Actor,
    engine: Engine,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscribe(bank, "application.submitted")
    firm_id, product_id = setup_firm_and_product(portal, bank)

    emitted: list[int] = []
    submitted = applications_api.events.application_submitted

    def spy(session: Session, application: Application, firm: Any) -> OutboxEvent:
        event = submitted(session, application, firm)
        emitted.append(event.id or 0)  # flushed: it has an id in this transaction
        return event

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the audit log is unavailable")

    # The audit entry is written after the event, in the same transaction.
    monkeypatch.setattr(applications_api.events, "application_submitted", spy)
    monkeypatch.setattr(applications_api.audit, "record", fail)
    quiet = TestClient(client.app, raise_server_exceptions=False)
    response = quiet.post(
        "/v1/applications",
        headers=portal.headers(),
        json={
            "firm_id": firm_id,
            "product_id": product_id,
            "requested_amount_yuan": 2_000_000,
            "requested_term_months": 12,
            "consent_share_profile": True,
        },
    )
    assert response.status_code == 500
    assert len(emitted) == 1
    with Session(engine) as session:
        assert list(session.exec(select(Application))) == []
    assert events_of(engine) == []
    assert deliveries(engine) == []


def test_erasing_a_firm_drops_its_profile_from_the_events(
    portal: Actor, bank: Actor, engine: Engine
) -> None:
    subscribe(bank, "application.submitted")
    firm_id, product_id = setup_firm_and_product(portal, bank)
    other_firm = portal.post("/v1/firms", json=data.firm(2)).json()["id"]
    apply(portal, firm_id, product_id)
    apply(portal, other_firm, product_id)
    assert [d["firm"]["id"] for _, _, d in deliveries(engine)] == [firm_id, other_firm]
    assert portal.delete(f"/v1/firms/{firm_id}").status_code == 204
    erased, kept = (d for _, _, d in deliveries(engine))
    assert "firm" not in erased
    assert erased["application"]["firm_id"] == firm_id  # the lead itself stays
    assert kept["firm"]["id"] == other_firm
