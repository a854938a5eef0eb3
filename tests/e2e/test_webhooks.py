"""Webhooks end to end, through the public gateway only, with the dispatcher as a real process.

An institution subscribes to the submissions and withdrawals of its products' applications, a
portal to the decisions on its own, a second portal to its own decisions too. Each endpoint
points at a receiver of its own (uvicorn on loopback) that verifies the Standard Webhooks
signature with the standardwebhooks package, as an integrator's would. What each receiver got
is checked against what its owner may see, and against the owner's delivery log.

The parties and their endpoints are set up once per module; each test makes its own firms and
applications, so the tests do not depend on their order.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.responses import Response

from tests.e2e.cluster import DISPATCHER_RETRY_SCHEDULE, Cluster
from tests.polling import wait_until
from tests.registry import data
from tests.registry.dispatcher.receiver import Received, Receiver, answer, serve

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# A delivery is due at once and the e2e dispatcher polls every 0.05 s: seconds are plenty,
# the rest is slack for a busy machine.
DELIVERY_TIMEOUT = 30.0
SUBMISSIONS = ["application.submitted", "application.withdrawn"]
DECISIONS = ["application.decided"]
# Credit codes of this module's firms, clear of test_flow's and of the seeded ones.
_SEQ = itertools.count(60_000_000)


class Api:
    """One API key talking to the gateway over HTTP."""

    def __init__(self, base_url: str, key: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)


def answered(response: httpx.Response, status: int) -> dict[str, Any]:
    request = response.request
    assert response.status_code == status, f"{request.method} {request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Party:
    """A principal, its endpoint (as created: with the secret) and the receiver behind it."""

    api: Api
    endpoint: dict[str, Any]
    receiver: Receiver

    @property
    def endpoint_id(self) -> int:
        return int(self.endpoint["id"])

    @property
    def secret(self) -> str:
        return str(self.endpoint["secret"])


@dataclass
class World:
    admin: Api
    bank: Party
    portal: Party
    other_portal: Party
    product_id: int


def key_for(admin: Api, role: str, name: str, **scope: Any) -> Api:
    principal = answered(
        admin.post("/v1/admin/principals", json={"role": role, "name": name, **scope}), 201
    )
    key = answered(admin.post("/v1/admin/keys", json={"principal_id": principal["id"]}), 201)
    return Api(str(admin.http.base_url), key["key"])


def register(api: Api, receiver: Receiver, event_types: list[str]) -> Party:
    """An endpoint for ``receiver``; the receiver then verifies with the secret it was given."""
    created = api.post(
        "/v1/webhooks/endpoints", json={"url": receiver.url, "event_types": event_types}
    )
    endpoint = answered(created, 201)
    assert endpoint["secret"].startswith("whsec_")
    assert created.headers["Cache-Control"] == "no-store"  # shown once, kept nowhere
    receiver.secrets.append(endpoint["secret"])
    return Party(api, endpoint, receiver)


@pytest.fixture(scope="module")
def world(cluster: Cluster) -> Iterator[World]:
    admin = Api(cluster.services["gateway"].url, cluster.admin_key)
    institution = answered(
        admin.post("/v1/admin/institutions", json={"name": "东莞e2e回调银行", "kind": "bank"}),
        201,
    )
    bank = key_for(admin, "institution", "e2e回调信贷部", institution_id=institution["id"])
    portal = key_for(admin, "portal", "e2e回调门户")
    other_portal = key_for(admin, "portal", "e2e另一门户")
    product = answered(bank.post("/v1/products", json=data.product()), 201)
    with (
        serve(Receiver(secrets=[])) as bank_receiver,
        serve(Receiver(secrets=[])) as portal_receiver,
        serve(Receiver(secrets=[])) as other_receiver,
    ):
        yield World(
            admin=admin,
            bank=register(bank, bank_receiver, SUBMISSIONS),
            portal=register(portal, portal_receiver, DECISIONS),
            other_portal=register(other_portal, other_receiver, DECISIONS),
            product_id=product["id"],
        )
    for api in (admin, bank, portal, other_portal):
        api.http.close()


def apply(world: World, portal: Api | None = None) -> dict[str, Any]:
    """A new firm of ``portal``'s (the world's portal by default) applies for the product."""
    portal = portal or world.portal.api
    firm = answered(portal.post("/v1/firms", json=data.firm(seq=next(_SEQ))), 201)
    body = data.application(firm["id"], world.product_id)
    return answered(portal.post("/v1/applications", json=body), 201)


def decide(world: World, application_id: int) -> dict[str, Any]:
    decision = {
        "outcome": "approved",
        "approved_amount_yuan": 1_500_000,
        "rate_bp": 380,
        "term_months": 12,
    }
    path = f"/v1/applications/{application_id}/decision"
    return answered(world.bank.api.post(path, json=decision), 201)


def event_of(received: Received) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(received.body)
    return body


def about(received: Received, event_type: str, application_id: int) -> bool:
    event = event_of(received)
    application = event["data"].get("application", {})
    return bool(event["type"] == event_type and application.get("id") == application_id)


def arrival(receiver: Receiver, event_type: str, application_id: int) -> Received:
    """The first request ``receiver`` got carrying this event about this application."""

    def matching() -> list[Received]:
        with receiver.lock:
            return [r for r in receiver.received if about(r, event_type, application_id)]

    wait_until(matching, timeout=DELIVERY_TIMEOUT)
    return matching()[0]


def mentions(receiver: Receiver, application_id: int) -> list[Received]:
    with receiver.lock:
        received = list(receiver.received)
    return [
        r
        for r in received
        if event_of(r)["data"].get("application", {}).get("id") == application_id
    ]


def deliveries(party: Party) -> list[dict[str, Any]]:
    page = answered(
        party.api.get(
            "/v1/webhooks/deliveries", params={"endpoint_id": party.endpoint_id, "limit": 500}
        ),
        200,
    )
    rows: list[dict[str, Any]] = page["data"]
    return rows


def logged_delivered(party: Party, webhook_id: str) -> dict[str, Any]:
    """The delivery log's entry for ``webhook_id``, once it says delivered (the dispatcher
    records an attempt after the receiver has answered it)."""
    found: dict[str, Any] = {}

    def delivered() -> bool:
        rows = [d for d in deliveries(party) if d["webhook_id"] == webhook_id]
        found.update(rows[0] if rows else {})
        return found.get("status") == "delivered"

    wait_until(delivered, timeout=DELIVERY_TIMEOUT)
    return found


def verify(received: Received, secret: str) -> dict[str, Any]:
    """What a receiver holding ``secret`` accepts (standardwebhooks raises on a bad signature)."""
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


def test_the_test_ping_of_each_endpoint_arrives_signed_and_is_logged(world: World) -> None:
    parties = (world.bank, world.portal, world.other_portal)
    queued = {
        party.endpoint_id: answered(
            party.api.post(f"/v1/webhooks/endpoints/{party.endpoint_id}/test"), 202
        )
        for party in parties
    }
    for party in parties:
        delivery = queued[party.endpoint_id]
        assert delivery["event_type"] == "webhook.ping"
        assert delivery["status"] == "pending"
        webhook_id = delivery["webhook_id"]
        wait_until(lambda: party.receiver.seen(webhook_id), timeout=DELIVERY_TIMEOUT)  # noqa: B023
        got = next(r for r in party.receiver.received if r.webhook_id == webhook_id)
        ping = verify(got, party.secret)
        assert ping["type"] == "webhook.ping"
        assert ping["data"] == {"endpoint_id": party.endpoint_id}
        others = [p for p in parties if p is not party]
        for other in others:  # another endpoint's secret does not verify it
            with pytest.raises(WebhookVerificationError):
                verify(got, other.secret)
        logged = logged_delivered(party, webhook_id)
        assert logged["attempts"] == 1
        assert [a["status_code"] for a in logged["attempt_log"]] == [204]
        # Only the endpoint tested got its ping.
        for other in others:
            with other.receiver.lock:
                pinged = [event_of(r)["data"] for r in other.receiver.received]
            assert {"endpoint_id": party.endpoint_id} not in pinged


def test_a_submission_reaches_the_institution_with_the_firm_profile(world: World) -> None:
    application = apply(world)
    got = arrival(world.bank.receiver, "application.submitted", application["id"])
    event = verify(got, world.bank.secret)
    assert got.verified
    assert event["data"]["application"]["status"] == "submitted"
    assert event["data"]["product_id"] == world.product_id
    assert event["data"]["version"] == application["version"]
    firm = answered(world.portal.api.get(f"/v1/firms/{application['firm_id']}"), 200)
    assert event["data"]["firm"]["id"] == firm["id"]
    assert event["data"]["firm"]["credit_code"] == firm["credit_code"]
    assert event["data"]["firm"]["name"] == firm["name"]
    logged = logged_delivered(world.bank, got.webhook_id)
    assert logged["event_type"] == "application.submitted"
    # The portals subscribed to decisions only: nothing of it is queued for them, or sent.
    for portal in (world.portal, world.other_portal):
        assert logged["event_id"] not in {d["event_id"] for d in deliveries(portal)}
        assert mentions(portal.receiver, application["id"]) == []


def test_a_decision_reaches_the_portal_that_applied_and_no_other(world: World) -> None:
    application = apply(world)
    decision = decide(world, application["id"])
    got = arrival(world.portal.receiver, "application.decided", application["id"])
    event = verify(got, world.portal.secret)
    assert event["data"]["application"]["status"] == "approved"
    assert event["data"]["decision"]["outcome"] == "approved"
    assert event["data"]["decision"]["approved_amount_yuan"] == decision["approved_amount_yuan"]
    logged = logged_delivered(world.portal, got.webhook_id)
    assert logged["event_type"] == "application.decided"
    assert [a["status_code"] for a in logged["attempt_log"]] == [204]
    # The other portal subscribed to decisions too, but to its own applications' only; the
    # institution did not subscribe to decisions. The event is queued for no one else.
    for other in (world.other_portal, world.bank):
        assert logged["event_id"] not in {d["event_id"] for d in deliveries(other)}
    # A ping sent to the other portal after the decision arrives, and the decision did not.
    ping = answered(
        world.other_portal.api.post(
            f"/v1/webhooks/endpoints/{world.other_portal.endpoint_id}/test"
        ),
        202,
    )
    wait_until(lambda: world.other_portal.receiver.seen(ping["webhook_id"]), DELIVERY_TIMEOUT)
    assert mentions(world.other_portal.receiver, application["id"]) == []
    # The institution heard of the submission only.
    submitted = arrival(world.bank.receiver, "application.submitted", application["id"])
    assert [event_of(r)["type"] for r in mentions(world.bank.receiver, application["id"])] == [
        event_of(submitted)["type"]
    ]


def test_a_withdrawal_reaches_the_institution_without_the_profile(world: World) -> None:
    application = apply(world)
    withdrawn = world.portal.api.post(f"/v1/applications/{application['id']}/withdraw")
    answered(withdrawn, 200)
    got = arrival(world.bank.receiver, "application.withdrawn", application["id"])
    event = verify(got, world.bank.secret)
    assert event["data"]["application"]["status"] == "withdrawn"
    assert "firm" not in event["data"]  # the firm's consent ended with the withdrawal
    assert logged_delivered(world.bank, got.webhook_id)["event_type"] == "application.withdrawn"


def test_after_rotation_events_verify_with_the_new_and_the_old_secret(world: World) -> None:
    portal = key_for(world.admin, "portal", "e2e轮换门户")
    with portal.http, serve(Receiver(secrets=[])) as receiver:
        party = register(portal, receiver, DECISIONS)
        old = party.secret
        rotated = portal.post(f"/v1/webhooks/endpoints/{party.endpoint_id}/rotate-secret")
        endpoint = answered(rotated, 200)
        assert rotated.headers["Cache-Control"] == "no-store"
        new = endpoint["secret"]
        assert new.startswith("whsec_")
        assert new != old
        expires = datetime.fromisoformat(endpoint["previous_secret_expires_at"])
        assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)

        application = apply(world, portal)
        decide(world, application["id"])
        got = arrival(receiver, "application.decided", application["id"])
        assert logged_delivered(party, got.webhook_id)["attempts"] == 1
    # Two signatures: a receiver holding either secret accepts the event, any other does not.
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert verify(got, secret)["data"]["application"]["id"] == application["id"]
    with pytest.raises(WebhookVerificationError):
        verify(got, "whsec_" + secrets.token_urlsafe(24))


def test_a_failed_attempt_is_retried_on_the_schedule_and_logged(world: World) -> None:
    # The receiver answers the first attempt 503 (retry), the next one 204.
    def plan(_webhook_id: str, nth: int) -> Response | None:
        return answer(503) if nth == 1 else None

    with serve(Receiver(secrets=[], plan=plan)) as receiver:
        party = register(world.portal.api, receiver, DECISIONS)
        try:
            queued = world.portal.api.post(f"/v1/webhooks/endpoints/{party.endpoint_id}/test")
            webhook_id = answered(queued, 202)["webhook_id"]
            logged = logged_delivered(party, webhook_id)
        finally:  # the portal's later decisions go to its first endpoint only
            world.portal.api.http.delete(f"/v1/webhooks/endpoints/{party.endpoint_id}")
    assert logged["attempts"] == 2
    assert [a["status_code"] for a in logged["attempt_log"]] == [503, 204]
    first, second = (datetime.fromisoformat(a["attempted_at"]) for a in logged["attempt_log"])
    # The first wait of the schedule, less its 10 % jitter.
    assert (second - first).total_seconds() >= 0.9 * DISPATCHER_RETRY_SCHEDULE[0]
    assert [r.webhook_id for r in receiver.received] == [webhook_id, webhook_id]
    assert all(r.verified for r in receiver.received)


def new_products(receiver: Receiver, product_id: int) -> dict[int, dict[str, Any]]:
    """match.new_product events ``receiver`` got about ``product_id``, by firm (verified)."""
    with receiver.lock:
        received = list(receiver.received)
    out: dict[int, dict[str, Any]] = {}
    for r in received:
        event = event_of(r)
        if event["type"] == "match.new_product" and event["data"]["product_id"] == product_id:
            assert r.verified
            assert event["data"]["firm_id"] not in out, "one firm told twice of one change"
            out[event["data"]["firm_id"]] = event["data"]
    return out


def test_a_listed_or_changed_product_is_pushed_to_the_consenting_firms_it_newly_reaches(
    world: World,
) -> None:
    """Proactive matching through the public API: the dispatcher scans, matching decides."""
    scout = key_for(world.admin, "portal", "e2e主动匹配门户")
    rival = key_for(world.admin, "portal", "e2e另一主动匹配门户")

    def firm(api: Api, **overrides: Any) -> int:
        body = data.firm(seq=next(_SEQ), **overrides)
        return int(answered(api.post("/v1/firms", json=body), 201)["id"])

    with serve(Receiver(secrets=[])) as scout_rx, serve(Receiver(secrets=[])) as rival_rx:
        register(scout, scout_rx, ["match.new_product"])
        register(rival, rival_rx, ["match.new_product"])
        reached = firm(scout)
        no_consent = firm(scout, consent_matching=False)
        no_need = firm(scout, need_amount_yuan=None, need_term_months=None)
        no_patents = firm(scout, invention_patents=0, utility_patents=0)
        rivals = firm(rival)

        product = answered(
            world.bank.api.post("/v1/products", json=data.product(name="主动匹配贷")), 201
        )
        pid = int(product["id"])
        wait_until(lambda: reached in new_products(scout_rx, pid), timeout=DELIVERY_TIMEOUT)
        wait_until(lambda: rivals in new_products(rival_rx, pid), timeout=DELIVERY_TIMEOUT)
        told = new_products(scout_rx, pid)
        assert set(told) == {reached}  # not without consent, a need, or the patents asked
        event = told[reached]
        assert event["version"] == 1
        assert event["institution_id"] == product["institution_id"]
        assert event["effective_cost"]["amount_yuan"] == 2_000_000
        assert event["effective_cost"]["effective_rate_bp"] > 0
        assert set(new_products(rival_rx, pid)) == {rivals}  # each portal its own firms only

        # Dropping the patent rule reaches the firm without patents, and only it.
        patched = world.bank.api.http.patch(
            f"/v1/products/{pid}", json={"min_patents": None}, headers={"If-Match": '"1"'}
        )
        answered(patched, 200)
        wait_until(lambda: no_patents in new_products(scout_rx, pid), timeout=DELIVERY_TIMEOUT)
        told = new_products(scout_rx, pid)
        assert set(told) == {reached, no_patents}
        assert told[no_patents]["version"] == 2
        assert no_consent not in told
        assert no_need not in told
    for api in (scout, rival):
        api.http.close()
