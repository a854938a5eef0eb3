"""Proactive matching in the registry: which product writes start a scan, how the dispatcher's
scanner pages through consenting firms (matching deciding), and model.promoted to admins."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.matching.main import create_app as create_matching
from services.registry import proactive
from services.registry.config import RegistrySettings
from services.registry.dispatcher.scanner import Scanner, backoff_seconds
from services.registry.models import Firm, MatchScan, OutboxEvent, WebhookDelivery
from services.registry.models.columns import utcnow
from tests.matching.conftest import matching_settings, registry_client
from tests.registry import data
from tests.registry.conftest import TOKEN, Actor
from tests.registry.test_model_store import upload
from tests.registry.test_webhooks import create


def scans(engine: Engine) -> list[MatchScan]:
    with Session(engine) as session:
        return list(session.exec(select(MatchScan).order_by(col(MatchScan.id))))


def told(engine: Engine) -> list[tuple[int, int, dict[str, Any]]]:
    """(endpoint id, firm id, data) of every match.new_product delivery, in order."""
    with Session(engine) as session:
        rows = session.exec(
            select(WebhookDelivery.endpoint_id, OutboxEvent.data)
            .join(OutboxEvent, col(WebhookDelivery.event_id) == col(OutboxEvent.id))
            .where(OutboxEvent.type == "match.new_product")
            .order_by(col(WebhookDelivery.id))
        )
        return [(e, d["firm_id"], d) for e, d in rows]


def test_a_listing_starts_a_scan_and_a_change_merges_into_a_pending_one(
    bank: Actor, engine: Engine
) -> None:
    product = bank.post("/v1/products", json=data.product()).json()
    [first] = scans(engine)
    assert (first.status, first.before, first.product_version) == ("pending", None, 1)
    assert first.after["min_patents"] == 1

    url = f"/v1/products/{product['id']}"
    renamed = bank.patch(url, json={"name": "改名"}, headers={"If-Match": '"1"'})
    assert renamed.status_code == 200
    assert len(scans(engine)) == 1  # a new name reaches no one new

    relaxed = bank.patch(url, json={"min_patents": None}, headers={"If-Match": '"2"'})
    assert relaxed.status_code == 200
    first, second = scans(engine)
    assert first.status == "superseded"
    # Not yet told of the listing, so every firm the product reaches now is new to it.
    assert (second.status, second.before, second.product_version) == ("pending", None, 3)
    assert second.after["min_patents"] is None

    off = bank.patch(url, json={"active": False}, headers={"If-Match": '"3"'})
    assert off.status_code == 200
    assert [s.status for s in scans(engine)] == ["superseded", "superseded"]
    on = bank.patch(url, json={"active": True}, headers={"If-Match": '"4"'})
    assert on.status_code == 200
    assert scans(engine)[-1].before is None  # listed again: new to everyone


def test_a_change_after_a_finished_scan_compares_with_the_listed_product(
    bank: Actor, engine: Engine
) -> None:
    product = bank.post("/v1/products", json=data.product()).json()
    with Session(engine) as session:
        scan = session.exec(select(MatchScan)).one()
        scan.status = "done"
        session.add(scan)
        session.commit()
    bank.patch(
        f"/v1/products/{product['id']}", json={"min_patents": 3}, headers={"If-Match": '"1"'}
    )
    latest = scans(engine)[-1]
    assert latest.before is not None
    assert latest.before["min_patents"] == 1
    assert latest.after["min_patents"] == 3


def test_a_bad_product_write_starts_no_scan(bank: Actor, engine: Engine) -> None:
    refused = bank.post("/v1/products", json=data.product(amount_min_yuan=-1))
    assert refused.status_code == 422
    assert scans(engine) == []


@pytest.fixture
def matching(client: TestClient) -> Iterator[TestClient]:
    """The real matching service (rule-only prior: no model yet) behind the scanner."""
    app = create_matching(matching_settings(), registry=registry_client(client.app))  # type: ignore[arg-type]
    with TestClient(app) as test_client:
        yield test_client


def through(service: TestClient) -> httpx.AsyncClient:
    """An async client whose requests the (sync) test client answers."""

    def handle(request: httpx.Request) -> httpx.Response:
        answer = service.request(
            request.method, request.url.path, content=request.content, headers=request.headers
        )
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://matching")


def down() -> httpx.AsyncClient:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url="http://matching")


def scanner(engine: Engine, client: httpx.AsyncClient, page: int = 2) -> Scanner:
    settings = RegistrySettings(
        internal_token=TOKEN, database_url="unused://", proactive_page_firms=page
    )
    return Scanner(engine, settings, client=client)


def run_all(scan: Scanner) -> None:
    async def go() -> None:
        while await scan.run_once():
            pass
        await scan.client.aclose()

    asyncio.run(go())


def test_the_scanner_tells_each_portal_of_its_consenting_firms_newly_reached(
    portal: Actor, other_portal: Actor, bank: Actor, engine: Engine, matching: TestClient
) -> None:
    mine = int(create(portal, event_types=["match.new_product"])["id"])
    theirs = int(create(other_portal, event_types=["match.new_product"])["id"])
    ids = {}
    for seq, (owner, overrides) in enumerate(
        [
            (portal, {}),
            (portal, {"consent_matching": False}),
            (portal, {"need_amount_yuan": None, "need_term_months": None}),
            (portal, {"invention_patents": 0, "utility_patents": 0}),
            (other_portal, {}),
            (portal, {}),
        ],
        start=1,
    ):
        ids[seq] = owner.post("/v1/firms", json=data.firm(seq, **overrides)).json()["id"]
    product = bank.post("/v1/products", json=data.product()).json()

    run_all(scanner(engine, through(matching), page=2))  # pages of 2: the cursor moves on

    [scan] = scans(engine)
    assert (scan.status, scan.notified) == ("done", 3), scan.last_error
    assert scan.cursor_firm_id == ids[6]
    sent = told(engine)
    assert [(e, f) for e, f, _ in sent] == [(mine, ids[1]), (theirs, ids[5]), (mine, ids[6])]
    event = sent[0][2]
    assert event["product_id"] == product["id"]
    assert event["version"] == 1
    assert event["approval_probability"] is None  # the prior: no model yet
    assert event["effective_cost"]["amount_yuan"] == 2_000_000
    assert event["model_version"]

    run_all(scanner(engine, through(matching)))  # done: never told twice
    assert len(told(engine)) == 3

    # Dropping the patent rule newly reaches the firm without patents, and no one else.
    bank.patch(
        f"/v1/products/{product['id']}", json={"min_patents": None}, headers={"If-Match": '"1"'}
    )
    run_all(scanner(engine, through(matching)))
    assert [(e, f) for e, f, _ in told(engine)][3:] == [(mine, ids[4])]


def test_matching_down_postpones_the_scan_and_loses_nothing(
    portal: Actor, bank: Actor, engine: Engine, matching: TestClient
) -> None:
    create(portal, event_types=["match.new_product"])
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    bank.post("/v1/products", json=data.product())
    started = utcnow()
    run_all(scanner(engine, down()))
    [scan] = scans(engine)
    assert (scan.status, scan.attempts, scan.cursor_firm_id) == ("pending", 1, 0)
    assert scan.last_error is not None
    assert "ConnectError" in scan.last_error
    assert scan.next_attempt_at >= started + timedelta(seconds=backoff_seconds(1))
    assert told(engine) == []
    assert [backoff_seconds(n) for n in (1, 2, 3)] == [5, 10, 20]
    assert backoff_seconds(30) == 600

    with Session(engine) as session:  # the backoff has passed
        due = session.get(MatchScan, scan.id)
        assert due is not None
        due.next_attempt_at = utcnow()
        session.add(due)
        session.commit()
    run_all(scanner(engine, through(matching)))
    assert [f for _, f, _ in told(engine)] == [firm_id]
    assert scans(engine)[0].attempts == 0


def test_a_page_whose_cursor_moved_on_writes_nothing(
    portal: Actor, bank: Actor, engine: Engine, matching: TestClient
) -> None:
    """A scanner whose lease ran out while another took the scan over finds the cursor moved
    and writes none of its page (so no firm is told twice)."""
    create(portal, event_types=["match.new_product"])
    portal.post("/v1/firms", json=data.firm())
    bank.post("/v1/products", json=data.product())
    [scan] = scans(engine)
    late = scanner(engine, through(matching))
    with Session(engine) as session:
        moved = session.get(MatchScan, scan.id)
        assert moved is not None
        moved.cursor_firm_id = 1
        session.add(moved)
        session.commit()
    assert late._record(scan.id or 0, 0, 99, None) is False
    assert scans(engine)[0].status == "pending"


def test_a_firm_that_withdrew_consent_meanwhile_is_not_told(
    portal: Actor, bank: Actor, engine: Engine
) -> None:
    from shared.schemas.matching import CostEstimate, NewlyQualifiedFirm

    create(portal, event_types=["match.new_product"])
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    bank.post("/v1/products", json=data.product())
    cost = CostEstimate(
        amount_yuan=1,
        term_months=12,
        rate_bp=1,
        annual_interest_yuan=0,
        annual_subsidy_yuan=0,
        annual_guarantee_fee_yuan=0,
        annual_cost_yuan=0,
        effective_rate_bp=1,
    )
    found = [NewlyQualifiedFirm(firm_id=firm_id, approval_probability=0.5, cost=cost)]
    with Session(engine) as session:
        firm = session.get(Firm, firm_id)
        assert firm is not None
        firm.consent_matching = False
        session.add(firm)
        scan = session.exec(select(MatchScan)).one()
        written = proactive.record_page(
            session, scan, firm_id, found, "m", finished=True, now=utcnow()
        )
        session.commit()
    assert written == 0
    assert told(engine) == []
    assert scans(engine)[0].status == "done"


def test_a_promotion_and_a_rollback_reach_the_admins_only(
    client: TestClient, admin: Actor, portal: Actor, bank: Actor, engine: Engine
) -> None:
    hook = int(create(admin, event_types=["model.promoted"])["id"])
    for actor in (portal, bank):
        refused = actor.post(
            "/v1/webhooks/endpoints",
            json={"url": "http://127.0.0.1:9/x", "event_types": ["model.promoted"]},
        )
        assert refused.status_code == 422
        assert refused.json()["code"] == "event_type_not_received"
        assert "event_types" in refused.json()["detail"]
    headers = {"X-Internal-Token": TOKEN, "X-Principal-Id": str(admin.id)}
    for version in ("m-1", "m-2"):
        upload(client, version)
        assert client.post(f"/internal/models/{version}/promote", headers=headers).is_success
    assert client.post("/internal/models/m-2/promote", headers=headers).is_success  # no-op
    assert client.post("/internal/models/rollback", headers=headers).is_success
    with Session(engine) as session:
        rows = session.exec(
            select(WebhookDelivery.endpoint_id, OutboxEvent.data)
            .join(OutboxEvent, col(WebhookDelivery.event_id) == col(OutboxEvent.id))
            .where(OutboxEvent.type == "model.promoted")
            .order_by(col(WebhookDelivery.id))
        ).all()
    assert [(e, d["model_version"], d["previous_version"], d["how"]) for e, d in rows] == [
        (hook, "m-1", None, "promote"),
        (hook, "m-2", "m-1", "promote"),
        (hook, "m-1", "m-2", "rollback"),
    ]
    assert all(d["actor_principal_id"] == admin.id for _, d in rows)
