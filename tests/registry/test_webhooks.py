"""The webhook endpoints and deliveries API: its owner's only, checked URLs, secrets shown once."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.registry.config import RegistrySettings
from services.registry.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.registry.models.columns import utcnow
from tests.registry.conftest import Actor

HOOK = "http://127.0.0.1:9/hook"
PUBLIC = "https://93.184.216.34/hook"  # a public address given as a literal: no DNS in tests


def create(actor: Actor, **overrides: object) -> dict[str, object]:
    body = {"url": HOOK, "event_types": ["application.decided"]} | overrides
    response = actor.post("/v1/webhooks/endpoints", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


@pytest.fixture
def production(client: TestClient) -> None:
    """The registry as deployed: https and public addresses only."""
    settings: RegistrySettings = client.app.state.settings  # type: ignore[attr-defined]
    client.app.state.settings = settings.model_copy(  # type: ignore[attr-defined]
        update={"environment": "production", "webhook_allow_private": False}
    )


def test_create_shows_the_secret_once(portal: Actor) -> None:
    created = create(portal, description="leads", event_types=["application.decided"] * 2)
    secret = str(created["secret"])
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert created["event_types"] == ["application.decided"]
    assert created["enabled"] is True
    assert created["disabled_reason"] is None
    read = portal.get(f"/v1/webhooks/endpoints/{created['id']}")
    assert read.status_code == 200
    assert read.headers["ETag"] == '"1"'
    assert "secret" not in read.json()
    listed = portal.get("/v1/webhooks/endpoints").json()
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert "secret" not in listed["data"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": HOOK, "event_types": ["application.approved"]}, "event_types.0"),
        ({"url": HOOK, "event_types": []}, "event_types"),
        ({"url": HOOK, "event_types": ["webhook.ping"]}, "event_types"),
        ({"url": HOOK, "event_types": "application.submitted"}, "event_types"),
        ({"url": HOOK, "event_types": ["application.submitted"], "secret": "x"}, "secret"),
        ({"url": HOOK, "event_types": ["application.submitted"], "enabled": "yes"}, "enabled"),
        ({"url": 5, "event_types": ["application.submitted"]}, "url"),
        ({"url": "ftp://example.com/x", "event_types": ["application.submitted"]}, "url"),
        ({"url": "https://u:p@example.com/", "event_types": ["application.submitted"]}, "url"),
        ({"url": "https://" + "a" * 2050, "event_types": ["application.submitted"]}, "url"),
        ({"event_types": ["application.submitted"]}, "url"),
        ({"url": HOOK, "event_types": ["application.submitted"], "description": "\x00"}, None),
    ],
)
def test_bad_bodies_are_422_naming_the_field(
    portal: Actor, body: dict[str, object], field: str | None
) -> None:
    response = portal.post("/v1/webhooks/endpoints", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    fields = [e["field"] for e in response.json()["errors"]]
    assert (field or "description") in fields


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",  # not https
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "https://localhost/hook",
    ],
)
def test_production_refuses_http_and_private_targets(portal: Actor, url: str) -> None:
    response = portal.post(
        "/v1/webhooks/endpoints", json={"url": url, "event_types": ["application.decided"]}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "unsafe_webhook_url"
    assert response.json()["errors"][0]["field"] == "url"


@pytest.mark.usefixtures("production")
def test_production_accepts_https_to_a_public_address(portal: Actor) -> None:
    created = create(portal, url=PUBLIC)
    patched = portal.patch(
        f"/v1/webhooks/endpoints/{created['id']}",
        json={"url": "https://10.0.0.1/hook"},
        headers={"If-Match": '"1"'},
    )
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["field"] == "url"


def test_patch_needs_if_match(portal: Actor) -> None:
    created = create(portal)
    url = f"/v1/webhooks/endpoints/{created['id']}"
    assert portal.patch(url, json={"enabled": False}).status_code == 428
    assert (
        portal.patch(url, json={"enabled": False}, headers={"If-Match": '"7"'}).status_code == 412
    )
    assert portal.patch(url, json={"enabled": None}, headers={"If-Match": '"1"'}).status_code == 422
    assert portal.patch(url, json={"bogus": 1}, headers={"If-Match": '"1"'}).status_code == 422
    patched = portal.patch(
        url,
        json={"enabled": False, "event_types": ["match.new_product"], "description": "x"},
        headers={"If-Match": '"1"'},
    )
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] == '"2"'
    assert patched.json()["enabled"] is False
    assert patched.json()["event_types"] == ["match.new_product"]
    assert "secret" not in patched.json()
    assert portal.patch(url, json={"enabled": True}, headers={"If-Match": '"1"'}).status_code == 412


def test_re_enabling_clears_the_automatic_reason(portal: Actor, engine: Engine) -> None:
    created = create(portal)
    with Session(engine) as session:
        endpoint = session.get(WebhookEndpoint, created["id"])
        assert endpoint is not None
        endpoint.enabled, endpoint.disabled_reason = False, "gone_410"
        endpoint.failing_since = utcnow()
        session.add(endpoint)
        session.commit()
    read = portal.get(f"/v1/webhooks/endpoints/{created['id']}").json()
    assert read["disabled_reason"] == "gone_410"
    patched = portal.patch(
        f"/v1/webhooks/endpoints/{created['id']}", json={"enabled": True}, headers={"If-Match": "*"}
    ).json()
    assert patched["enabled"] is True
    assert patched["disabled_reason"] is None
    assert patched["failing_since"] is None


def test_rotation_shows_a_new_secret_and_keeps_the_old_one_for_24_hours(
    portal: Actor, engine: Engine
) -> None:
    created = create(portal)
    before = utcnow()
    rotated = portal.post(f"/v1/webhooks/endpoints/{created['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != created["secret"]
    with Session(engine) as session:
        endpoint = session.get(WebhookEndpoint, created["id"])
        assert endpoint is not None
        assert endpoint.secret == new
        assert endpoint.previous_secret == created["secret"]
        assert endpoint.previous_secret_expires_at is not None
        overlap = endpoint.previous_secret_expires_at - before
        assert timedelta(hours=24) <= overlap < timedelta(hours=24, minutes=1)
    read = portal.get(f"/v1/webhooks/endpoints/{created['id']}").json()
    assert "secret" not in read
    assert "previous_secret" not in read
    assert read["previous_secret_expires_at"] is not None


def test_ping_creates_one_pending_delivery_to_that_endpoint_only(
    portal: Actor, engine: Engine
) -> None:
    target = create(portal)
    other = create(portal)
    sent = portal.post(f"/v1/webhooks/endpoints/{target['id']}/test")
    assert sent.status_code == 202, sent.text
    delivery = sent.json()
    assert delivery["event_type"] == "webhook.ping"
    assert delivery["endpoint_id"] == target["id"]
    assert delivery["status"] == "pending"
    assert delivery["webhook_id"] == f"msg_{delivery['event_id']}_{target['id']}"
    with Session(engine) as session:
        rows = list(session.exec(select(WebhookDelivery)))
        assert [(d.id, d.endpoint_id) for d in rows] == [(delivery["id"], target["id"])]
        event = session.get(OutboxEvent, delivery["event_id"])
        assert event is not None
        assert event.type == "webhook.ping"
    listed = portal.get("/v1/webhooks/deliveries", params={"endpoint_id": other["id"]})
    assert listed.json()["data"] == []


def test_deliveries_filter_and_attempt_log_and_redeliver(portal: Actor, engine: Engine) -> None:
    first, second = create(portal), create(portal)
    one = portal.post(f"/v1/webhooks/endpoints/{first['id']}/test").json()
    two = portal.post(f"/v1/webhooks/endpoints/{second['id']}/test").json()
    with Session(engine) as session:
        delivered = session.get(WebhookDelivery, one["id"])
        assert delivered is not None
        delivered.status, delivered.attempts, delivered.last_status_code = "delivered", 2, 200
        session.add(delivered)
        for code in (503, 200):
            session.add(
                WebhookAttempt(
                    delivery_id=one["id"], status_code=code, latency_ms=12, response_excerpt="ok"
                )
            )
        session.commit()
    by_endpoint = portal.get("/v1/webhooks/deliveries", params={"endpoint_id": first["id"]})
    assert [d["id"] for d in by_endpoint.json()["data"]] == [one["id"]]
    log = by_endpoint.json()["data"][0]["attempt_log"]
    assert [a["status_code"] for a in log] == [503, 200]
    assert log[0]["latency_ms"] == 12
    assert log[0]["response_excerpt"] == "ok"
    pending = portal.get("/v1/webhooks/deliveries", params={"status": "pending"}).json()["data"]
    assert [d["id"] for d in pending] == [two["id"]]
    assert portal.get("/v1/webhooks/deliveries", params={"status": "lost"}).status_code == 422
    page = portal.get("/v1/webhooks/deliveries", params={"limit": 1}).json()
    assert [d["id"] for d in page["data"]] == [one["id"]]
    rest = portal.get("/v1/webhooks/deliveries", params={"cursor": page["next_cursor"]}).json()
    assert [d["id"] for d in rest["data"]] == [two["id"]]

    again = portal.post(f"/v1/webhooks/deliveries/{one['id']}/redeliver")
    assert again.status_code == 202, again.text
    assert again.json()["event_id"] == one["event_id"]
    assert again.json()["endpoint_id"] == first["id"]
    assert again.json()["status"] == "pending"
    assert again.json()["id"] not in (one["id"], two["id"])


def test_delete_removes_the_endpoint_and_its_log(portal: Actor, engine: Engine) -> None:
    created = create(portal)
    delivery = portal.post(f"/v1/webhooks/endpoints/{created['id']}/test").json()
    with Session(engine) as session:
        session.add(WebhookAttempt(delivery_id=delivery["id"], status_code=500))
        session.commit()
    assert portal.delete(f"/v1/webhooks/endpoints/{created['id']}").status_code == 204
    assert portal.get(f"/v1/webhooks/endpoints/{created['id']}").status_code == 404
    assert portal.get("/v1/webhooks/deliveries").json()["data"] == []


def test_a_webhook_id_is_never_reused_after_its_endpoint_is_deleted(portal: Actor) -> None:
    """SQLite hands a deleted endpoint's row ids to the next rows: the webhook-id a receiver
    dedupes by must still be new."""
    seen = set()
    for _ in range(3):
        endpoint = create(portal)
        ping = portal.post(f"/v1/webhooks/endpoints/{endpoint['id']}/test").json()
        assert ping["webhook_id"] not in seen
        seen.add(ping["webhook_id"])
        assert portal.delete(f"/v1/webhooks/endpoints/{endpoint['id']}").status_code == 204


def test_other_principals_ids_are_404(portal: Actor, other_portal: Actor, bank: Actor) -> None:
    mine = create(portal)
    delivery = portal.post(f"/v1/webhooks/endpoints/{mine['id']}/test").json()
    url = f"/v1/webhooks/endpoints/{mine['id']}"
    for stranger in (other_portal, bank):
        assert stranger.get(url).status_code == 404
        assert stranger.patch(url, json={"enabled": False}).status_code == 404
        assert (
            stranger.patch(url, json={"enabled": False}, headers={"If-Match": "*"}).status_code
            == 404
        )
        assert stranger.post(f"{url}/rotate-secret").status_code == 404
        assert stranger.post(f"{url}/test").status_code == 404
        assert stranger.delete(url).status_code == 404
        filtered = stranger.get("/v1/webhooks/deliveries", params={"endpoint_id": mine["id"]})
        assert filtered.status_code == 404
        assert filtered.json()["errors"][0]["field"] == "endpoint_id"
        assert stranger.get("/v1/webhooks/deliveries").json()["data"] == []
        assert stranger.get("/v1/webhooks/endpoints").json()["data"] == []
        redeliver = stranger.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver")
        assert redeliver.status_code == 404
    assert portal.get(url).status_code == 200
    assert len(portal.get("/v1/webhooks/deliveries").json()["data"]) == 1


def test_a_principal_keeps_a_bounded_number_of_endpoints(
    portal: Actor, other_portal: Actor, client: TestClient
) -> None:
    settings: RegistrySettings = client.app.state.settings  # type: ignore[attr-defined]
    client.app.state.settings = settings.model_copy(  # type: ignore[attr-defined]
        update={"webhook_max_endpoints": 2}
    )
    create(portal)
    create(portal)
    third = portal.post(
        "/v1/webhooks/endpoints", json={"url": HOOK, "event_types": ["match.new_product"]}
    )
    assert third.status_code == 409
    assert third.json()["code"] == "too_many_endpoints"
    create(other_portal)  # per principal
