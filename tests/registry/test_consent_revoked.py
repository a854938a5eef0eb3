"""``consent.revoked``: revoking a consent tells the institution it was for, once, without the
profile, so that a bank holding a copy stops processing it (PIPL art. 15, 47)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.registry.models import OutboxEvent
from shared.schemas.webhooks import CONSENT_ERASED_NOTICE, CONSENT_REVOKED_NOTICE, Event
from tests.registry import data
from tests.registry.conftest import Actor
from tests.registry.dispatcher.data import run_until, settings_for
from tests.registry.dispatcher.receiver import Receiver, serve
from tests.registry.test_applications import apply, setup_firm_and_product
from tests.registry.test_consents import consents, revoke
from tests.registry.test_outbox import colleague_of, deliveries, events_of, subscribe
from tests.registry.test_webhooks import HOOK

DATA_KEYS = {
    "consent_id",
    "firm_id",
    "institution_id",
    "granted_at",
    "revoked_at",
    "application_ids",
    "reason",
    "notice",
}


def revocations(engine: Engine) -> list[dict[str, Any]]:
    """The data of every consent.revoked event in the outbox, oldest first."""
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxEvent.data)
            .where(OutboxEvent.type == "consent.revoked")
            .order_by(col(OutboxEvent.id))
        )
        return list(rows)


def test_revoking_tells_that_institution_only_without_the_profile(
    admin: Actor, portal: Actor, bank: Actor, other_bank: Actor, engine: Engine
) -> None:
    notices = subscribe(bank, "consent.revoked")
    colleague_notices = subscribe(
        colleague_of(admin, bank, engine), "application.submitted", "consent.revoked"
    )
    subscribe(bank, "application.submitted", "application.withdrawn")  # not this type
    subscribe(bank, "consent.revoked", enabled=False)
    other_notices = subscribe(other_bank, "consent.revoked")
    firm_id, product_id = setup_firm_and_product(portal, bank)
    second_product = bank.post("/v1/products", json=data.product(name="第二产品")).json()["id"]
    other_product = other_bank.post("/v1/products", json=data.product()).json()["id"]
    first = apply(portal, firm_id, product_id)
    second = apply(portal, firm_id, second_product)
    apply(portal, firm_id, other_product)
    profile = bank.get(f"/v1/firms/{firm_id}").json()
    consent, other_consent = consents(portal, firm_id)
    before = len(deliveries(engine))

    revoked = revoke(portal, firm_id, consent["id"])

    [event] = revocations(engine)
    assert event == {
        "consent_id": consent["id"],
        "firm_id": firm_id,
        "institution_id": consent["institution_id"],
        "granted_at": consent["granted_at"],
        "revoked_at": revoked["revoked_at"],
        "application_ids": [first["id"], second["id"]],
        "reason": "revoked",
        "notice": CONSENT_REVOKED_NOTICE,
    }
    # No profile field, and neither the firm's name nor its credit code anywhere in it.
    assert set(event) == DATA_KEYS
    assert not set(event) & (set(profile) - {"id"})
    text = json.dumps(event, ensure_ascii=False)
    assert profile["credit_code"] not in text
    assert profile["name"] not in text
    # To the subscribed, enabled endpoints of that institution's principals; not the other bank.
    sent = deliveries(engine)[before:]
    assert [(t, e) for t, e, _ in sent] == [
        ("consent.revoked", notices),
        ("consent.revoked", colleague_notices),
    ]
    assert other_notices not in {e for _, e, _ in deliveries(engine)}
    # Revoking the other institution's consent tells that one, in its turn.
    revoke(portal, firm_id, other_consent["id"])
    assert deliveries(engine)[-1][:2] == ("consent.revoked", other_notices)


def test_revoking_twice_emits_one_event(portal: Actor, bank: Actor, engine: Engine) -> None:
    notices = subscribe(bank, "consent.revoked")
    firm_id, product_id = setup_firm_and_product(portal, bank)
    apply(portal, firm_id, product_id)
    [consent] = consents(portal, firm_id)
    first = revoke(portal, firm_id, consent["id"])
    assert revoke(portal, firm_id, consent["id"]) == first  # the second changes nothing
    assert events_of(engine) == ["application.submitted", "consent.revoked"]
    assert [(t, e) for t, e, _ in deliveries(engine)] == [("consent.revoked", notices)]
    assert [d["revoked_at"] for d in revocations(engine)] == [first["revoked_at"]]


def test_erasing_a_firm_tells_each_institution_holding_its_profile_once(
    portal: Actor, bank: Actor, other_bank: Actor, engine: Engine
) -> None:
    notices = subscribe(bank, "consent.revoked")
    other_notices = subscribe(other_bank, "consent.revoked")
    firm_id, product_id = setup_firm_and_product(portal, bank)
    other_product = other_bank.post("/v1/products", json=data.product()).json()["id"]
    application = apply(portal, firm_id, product_id)
    other_application = apply(portal, firm_id, other_product)
    bystander_id = portal.post("/v1/firms", json=data.firm(2)).json()["id"]  # nothing for it
    apply(portal, bystander_id, product_id)
    consent, other_consent = consents(portal, firm_id)
    revoke(portal, firm_id, other_consent["id"])  # the other bank was told already
    before = len(deliveries(engine))

    erased = portal.delete(f"/v1/firms/{firm_id}")
    assert erased.status_code == 204, erased.text

    *_, event = revocations(engine)
    assert [d["reason"] for d in revocations(engine)] == ["revoked", "erased"]
    assert event["consent_id"] == consent["id"]
    assert event["firm_id"] == firm_id
    assert event["institution_id"] == consent["institution_id"]
    assert event["application_ids"] == [application["id"]]
    assert event["notice"] == CONSENT_ERASED_NOTICE
    assert event["revoked_at"] >= event["granted_at"]
    assert set(event) == DATA_KEYS
    # Only the bank that still held the profile; the other was told when it was revoked.
    assert [(t, e) for t, e, _ in deliveries(engine)[before:]] == [("consent.revoked", notices)]
    assert other_notices not in {e for _, e, _ in deliveries(engine)[before:]}
    assert other_application["id"] not in event["application_ids"]
    # The bystander's consent stands.
    assert [c["status"] for c in consents(portal, bystander_id)] == ["active"]


def test_erasing_a_firm_that_never_applied_emits_nothing(
    portal: Actor, bank: Actor, engine: Engine
) -> None:
    subscribe(bank, "consent.revoked")
    firm_id, _ = setup_firm_and_product(portal, bank)
    assert portal.delete(f"/v1/firms/{firm_id}").status_code == 204
    assert revocations(engine) == []


def test_a_consent_without_subscribers_is_still_in_the_outbox(
    portal: Actor, bank: Actor, engine: Engine
) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    apply(portal, firm_id, product_id)
    [consent] = consents(portal, firm_id)
    revoke(portal, firm_id, consent["id"])
    assert [d["consent_id"] for d in revocations(engine)] == [consent["id"]]
    assert deliveries(engine) == []


def test_only_institutions_may_subscribe(portal: Actor, bank: Actor, admin: Actor) -> None:
    for outsider in (portal, admin):
        refused = outsider.post(
            "/v1/webhooks/endpoints", json={"url": HOOK, "event_types": ["consent.revoked"]}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "event_type_not_received"
        assert refused.json()["errors"][0]["field"] == "event_types"
        assert "consent.revoked (sent to institution principals)" in refused.json()["detail"]
    # Nor can a portal's endpoint be changed to receive it.
    endpoint = portal.post(
        "/v1/webhooks/endpoints", json={"url": HOOK, "event_types": ["application.decided"]}
    )
    changed = portal.patch(
        f"/v1/webhooks/endpoints/{endpoint.json()['id']}",
        json={"event_types": ["application.decided", "consent.revoked"]},
        headers={"If-Match": endpoint.headers["etag"]},
    )
    assert changed.status_code == 422, changed.text
    assert changed.json()["code"] == "event_type_not_received"
    # An institution may.
    accepted = bank.post(
        "/v1/webhooks/endpoints", json={"url": HOOK, "event_types": ["consent.revoked"]}
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["event_types"] == ["consent.revoked"]


def test_the_dispatcher_delivers_it_signed_to_the_bank(
    portal: Actor, bank: Actor, engine: Engine
) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    application = apply(portal, firm_id, product_id)
    [consent] = consents(portal, firm_id)
    with serve(Receiver(secrets=[])) as receiver:
        endpoint = bank.post(
            "/v1/webhooks/endpoints",
            json={"url": receiver.url, "event_types": ["consent.revoked"]},
        ).json()
        receiver.secrets.append(endpoint["secret"])
        revoked = revoke(portal, firm_id, consent["id"])
        run_until(engine, settings_for(engine), lambda: receiver.delivered_ids())
    [got] = receiver.received
    assert got.verified
    event = Event.model_validate_json(got.body)
    assert event.type == "consent.revoked"
    assert event.data["consent_id"] == consent["id"]
    assert event.data["application_ids"] == [application["id"]]
    assert event.data["revoked_at"] == revoked["revoked_at"]
    [logged] = bank.get("/v1/webhooks/deliveries").json()["data"]
    assert (logged["event_type"], logged["status"]) == ("consent.revoked", "delivered")
    assert logged["webhook_id"] == got.webhook_id
