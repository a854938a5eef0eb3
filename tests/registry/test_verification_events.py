"""firm.verification_changed: a register's publication tells each portal, in the outbox, which
of its own firms now read otherwise (value or contradiction), with the day the reading holds
until; a firm whose reading is unchanged is not told; only portals may subscribe."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.registry.models import OutboxEvent, WebhookDelivery
from shared.china_date import today_in_china
from tests.registry import data
from tests.registry.conftest import Actor, make_principal
from tests.registry.test_provenance import new_firm
from tests.registry.test_registers import answer, upload
from tests.registry.test_webhooks import create

CHANGED = "firm.verification_changed"


def changes(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxEvent.data)
            .where(OutboxEvent.type == CHANGED)
            .order_by(col(OutboxEvent.id))
        ).all()
    return [dict(row) for row in rows]


def delivered_to(engine: Engine, endpoint_id: Any) -> list[int]:
    with Session(engine) as session:
        events = session.exec(
            select(OutboxEvent.data)
            .join(WebhookDelivery, col(WebhookDelivery.event_id) == col(OutboxEvent.id))
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .where(OutboxEvent.type == CHANGED)
        ).all()
    return sorted(int(e["firm_id"]) for e in events)


def test_a_publication_tells_each_portal_of_its_own_changed_firms(
    admin: Actor, portal: Actor, other_portal: Actor, engine: Engine
) -> None:
    city = make_principal(admin, "official")
    mine = create(portal, event_types=[CHANGED])
    theirs = create(other_portal, event_types=[CHANGED])
    claimed = new_firm(portal, 1, is_high_tech=True)  # not listed: contradicted
    modest = new_firm(portal, 2)  # listed, undeclared: value changes
    silent = new_firm(portal, 3)  # neither: reads false before and after
    elsewhere = new_firm(other_portal, 4)  # listed: the other portal's
    today = today_in_china()
    ends_today = {
        "valid_from": (today - timedelta(days=10)).isoformat(),
        "valid_to": today.isoformat(),
    }
    lines = [data.register_line("high_tech", 2, **ends_today), data.register_line("high_tech", 4)]
    answer(upload(city, "high_tech", lines, "h1"))
    found = {e["firm_id"]: e for e in changes(engine)}
    assert set(found) == {claimed, modest, elsewhere}
    assert silent not in found
    assert found[claimed]["attribute"] == "is_high_tech"
    assert found[claimed]["previous"] == {"value": True, "contradicted": False}
    assert found[claimed]["provenance"]["status"] == "contradicted"
    assert found[claimed]["holds_until"] is None
    assert found[modest]["previous"] == {"value": False, "contradicted": False}
    assert (found[modest]["provenance"]["value"], found[modest]["provenance"]["status"]) == (
        True,
        "contradicted",  # listed, though the portal declared otherwise
    )
    # Expiry writes nothing: the event says the last day its reading holds.
    assert found[modest]["holds_until"] == today.isoformat()
    assert found[modest]["provenance"]["source"]["version"] == 1
    # Each portal's endpoint gets its own firms only.
    assert delivered_to(engine, mine["id"]) == sorted([claimed, modest])
    assert delivered_to(engine, theirs["id"]) == [elsewhere]

    # The same list again changes nobody's reading: no event.
    answer(upload(city, "high_tech", lines, "h2"))
    assert len(changes(engine)) == 3
    # Dropping a firm from the list (a replace) tells its portal.
    answer(upload(city, "high_tech", [data.register_line("high_tech", 2, **ends_today)], "h3"))
    [dropped] = changes(engine)[3:]
    assert dropped["firm_id"] == elsewhere
    assert dropped["previous"] == {"value": True, "contradicted": True}
    assert dropped["provenance"]["status"] == "verified"  # it never declared it


def test_only_portals_subscribe_to_verification_changes(bank: Actor, admin: Actor) -> None:
    for actor in (bank, make_principal(admin, "official")):
        refused = actor.post(
            "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/h", "event_types": [CHANGED]}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "event_types"
