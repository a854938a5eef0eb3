"""A firm's consents through the public gateway: listed and revoked by its portal, keyed writes
made once, bad ids refused naming the field, and the institution cut off from the profile."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from services.registry.models import OutboxEvent, WebhookDelivery
from tests.gateway.conftest import Api, Stack
from tests.registry import data

LEADS = {"url": "http://127.0.0.1:9/leads", "event_types": ["application.submitted"]}


def _ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def _apply(portal: Api, firm_id: int, product_id: int) -> dict[str, Any]:
    body = {
        "firm_id": firm_id,
        "product_id": product_id,
        "requested_amount_yuan": 2_000_000,
        "requested_term_months": 12,
        "consent_share_profile": True,
    }
    created: dict[str, Any] = _ok(portal.post("/v1/applications", json=body), 201)
    return created


def _pending_submissions(stack: Stack) -> list[dict[str, Any]]:
    """The data of each pending application.submitted delivery, in order."""
    with Session(stack.engine) as session:
        rows = session.exec(
            select(OutboxEvent.data)
            .join(WebhookDelivery, col(WebhookDelivery.event_id) == col(OutboxEvent.id))
            .where(WebhookDelivery.status == "pending")
            .where(OutboxEvent.type == "application.submitted")
            .order_by(col(WebhookDelivery.id))
        )
        return list(rows)


@pytest.fixture
def world(stack: Stack) -> dict[str, Any]:
    portal = stack.principal("portal")
    bank = stack.institution("甲银行")
    _ok(bank.post("/v1/webhooks/endpoints", json=LEADS), 201)
    firm = _ok(portal.post("/v1/firms", json=data.firm()), 201)
    product = _ok(bank.post("/v1/products", json=data.product()), 201)
    return {"portal": portal, "bank": bank, "firm": firm["id"], "product": product["id"]}


def test_revoking_through_the_gateway(stack: Stack, world: dict[str, Any]) -> None:
    portal, bank, firm_id = world["portal"], world["bank"], world["firm"]
    application = _apply(portal, firm_id, world["product"])
    [consent] = _ok(portal.get(f"/v1/firms/{firm_id}/consents"))["data"]
    assert consent["application_ids"] == [application["id"]]
    assert consent["institution_name"] == "甲银行"
    assert _ok(bank.get(f"/v1/firms/{firm_id}"))["id"] == firm_id
    [pending] = _pending_submissions(stack)
    assert pending["firm"]["id"] == firm_id

    url = f"/v1/firms/{firm_id}/consents/{consent['id']}/revoke"
    key = {"Idempotency-Key": "revoke-1"}
    revoked = portal.post(url, headers=key)
    assert _ok(revoked)["status"] == "revoked"
    replayed = portal.post(url, headers=key)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == revoked.json()

    gone = bank.get(f"/v1/firms/{firm_id}")
    assert gone.status_code == 404
    assert data.firm()["name"] not in gone.text
    [pending] = _pending_submissions(stack)
    assert "firm" not in pending
    assert pending["application"]["id"] == application["id"]
    # The lead stays in the bank's list, marked: the consent ended.
    [lead] = _ok(bank.get("/v1/applications"))["data"]
    assert lead["consent_withdrawn_at"] == revoked.json()["revoked_at"]

    # A new application to the same bank (the open one withdrawn) consents anew.
    _ok(portal.post(f"/v1/applications/{application['id']}/withdraw"))
    again = _apply(portal, firm_id, world["product"])
    listed = _ok(portal.get(f"/v1/firms/{firm_id}/consents"))["data"]
    assert [(c["status"], c["application_ids"]) for c in listed] == [
        ("revoked", [application["id"]]),
        ("active", [again["id"]]),
    ]
    assert _ok(bank.get(f"/v1/firms/{firm_id}"))["id"] == firm_id
    assert ["firm" in d for d in _pending_submissions(stack)] == [False, True]


def test_a_decision_revoked_after_stays_in_the_statistics(
    stack: Stack, world: dict[str, Any]
) -> None:
    """Revoked after the decision: the institution loses the firm, the officials' figures
    keep the application and its approval (read first after the revocation: no cached
    answer from before it)."""
    portal, bank, firm_id = world["portal"], world["bank"], world["firm"]
    application = _apply(portal, firm_id, world["product"])
    approval = {
        "outcome": "approved",
        "approved_amount_yuan": 1_500_000,
        "rate_bp": 400,
        "term_months": 12,
    }
    _ok(bank.post(f"/v1/applications/{application['id']}/decision", json=approval), 201)
    [consent] = _ok(portal.get(f"/v1/firms/{firm_id}/consents"))["data"]
    _ok(portal.post(f"/v1/firms/{firm_id}/consents/{consent['id']}/revoke"))
    assert bank.get(f"/v1/firms/{firm_id}").status_code == 404

    official = stack.principal("official")
    overview = _ok(official.get("/v1/stats/overview"))
    assert (overview["applications"], overview["approvals"]) == (1, 1)
    assert overview["approved_amount_yuan"] == 1_500_000
    decision = _ok(bank.get(f"/v1/applications/{application['id']}/decision"))
    assert decision["approved_amount_yuan"] == 1_500_000


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/firms/{firm}/consents/abc/revoke", "consent_id"),
        ("/v1/firms/{firm}/consents/0/revoke", "consent_id"),
        ("/v1/firms/{firm}/consents/9223372036854775808/revoke", "consent_id"),
        ("/v1/firms/abc/consents/1/revoke", "firm_id"),
        ("/v1/firms/abc/consents", "firm_id"),
    ],
)
def test_bad_ids_are_422_naming_the_field(world: dict[str, Any], path: str, field: str) -> None:
    portal = world["portal"]
    answer = portal.request(
        "POST" if path.endswith("revoke") else "GET", path.format(firm=world["firm"])
    )
    assert answer.status_code == 422, answer.text
    assert [error["field"] for error in answer.json()["errors"]] == [field]


def test_unknown_and_foreign_consents_are_404(stack: Stack, world: dict[str, Any]) -> None:
    portal, firm_id = world["portal"], world["firm"]
    sibling = _ok(portal.post("/v1/firms", json=data.firm(2)), 201)["id"]
    _apply(portal, firm_id, world["product"])
    _apply(portal, sibling, world["product"])
    [foreign] = _ok(portal.get(f"/v1/firms/{sibling}/consents"))["data"]
    for consent_id in (987654, foreign["id"]):
        answer = portal.post(f"/v1/firms/{firm_id}/consents/{consent_id}/revoke")
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "not_found"
    assert _ok(portal.get(f"/v1/firms/{sibling}/consents"))["data"] == [foreign]
    assert portal.get("/v1/firms/987654/consents").status_code == 404


def test_the_schema_documents_consents(stack: Stack) -> None:
    client: TestClient = stack.client
    spec = client.app.openapi()  # type: ignore[attr-defined]
    revoke = spec["paths"]["/v1/firms/{firm_id}/consents/{consent_id}/revoke"]["post"]
    assert "404" in revoke["responses"]
    assert "same record" in revoke["description"]
    assert "pending" in revoke["description"]
    assert "`consent.revoked`" in revoke["description"]
    schema = spec["components"]["schemas"]["ConsentPublic"]
    [example] = schema["examples"]
    assert set(example) == set(schema["properties"])
    assert example["status"] in spec["components"]["schemas"]["ConsentStatus"]["enum"]
