"""Webhook endpoints and deliveries through the client, and verify_webhook on what the real
dispatcher sent: good, tampered, stale, wrong secret, missing headers, and the two
signatures of a secret rotation."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from finmatch_client import NotFound, WebhookVerificationError, verify_webhook
from finmatch_client.models import (
    DeliveryStatus,
    EventType,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)
from tests.client.conftest import World, unknown_fields
from tests.polling import wait_until
from tests.registry.dispatcher.receiver import Received, Receiver, serve

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
DELIVERY_TIMEOUT = 30.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve(Receiver(secrets=[])) as running:
        yield running


def received(receiver: Receiver, webhook_id: str) -> Received:
    wait_until(lambda: receiver.seen(webhook_id) > 0, timeout=DELIVERY_TIMEOUT)
    with receiver.lock:
        return next(r for r in receiver.received if r.webhook_id == webhook_id)


def a_secret() -> str:
    """Someone else's secret."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def test_endpoint_ping_verified_and_refused_when_not_ours(world: World, receiver: Receiver) -> None:
    endpoint = world.portal.webhooks.create_endpoint(
        WebhookEndpointCreate(url=receiver.url, event_types=[EventType.APPLICATION_DECIDED])
    )
    assert endpoint.secret.startswith("whsec_")
    receiver.secrets.append(endpoint.secret)
    delivery = world.portal.webhooks.send_test(endpoint.id)
    got = received(receiver, delivery.webhook_id)

    event = verify_webhook(endpoint.secret, got.headers, got.body)
    assert (event.id, event.type) == (delivery.webhook_id, EventType.WEBHOOK_PING)
    assert unknown_fields(event) == []

    tampered = got.body.replace(b"webhook.ping", b"webhook.pong")
    with pytest.raises(WebhookVerificationError) as bad:
        verify_webhook(endpoint.secret, got.headers, tampered)
    assert bad.value.reason == "bad_signature"

    other = world.other_portal.webhooks.create_endpoint(
        WebhookEndpointCreate(url=receiver.url, event_types=[EventType.APPLICATION_DECIDED])
    )
    with pytest.raises(WebhookVerificationError) as wrong:
        verify_webhook(other.secret, got.headers, got.body)
    assert wrong.value.reason == "bad_signature"

    # Correctly signed, but 10 minutes old: a replay.
    then = datetime.now(UTC) - timedelta(minutes=10)
    replay = dict(got.headers)
    replay["webhook-timestamp"] = str(int(then.timestamp()))
    replay["webhook-signature"] = Webhook(endpoint.secret).sign(
        got.headers["webhook-id"], then, got.body.decode()
    )
    with pytest.raises(WebhookVerificationError) as stale:
        verify_webhook(endpoint.secret, replay, got.body)
    assert stale.value.reason == "stale"

    bare = {k: v for k, v in got.headers.items() if k != "webhook-signature"}
    with pytest.raises(WebhookVerificationError) as missing:
        verify_webhook(endpoint.secret, bare, got.body)
    assert missing.value.reason == "missing_headers"


def test_rotation_signs_with_both_secrets(world: World, receiver: Receiver) -> None:
    endpoint = world.portal.webhooks.create_endpoint(
        WebhookEndpointCreate(url=receiver.url, event_types=[EventType.APPLICATION_DECIDED])
    )
    old = endpoint.secret
    rotated = world.portal.webhooks.rotate_secret(endpoint.id)
    new = rotated.secret
    assert new != old
    assert rotated.previous_secret_expires_at is not None
    receiver.secrets.append(new)
    got = received(receiver, world.portal.webhooks.send_test(endpoint.id).webhook_id)
    assert len(got.headers["webhook-signature"].split()) == 2

    # Either secret alone verifies, and so does a receiver holding both.
    for held in ([new], [old], [a_secret(), new]):
        assert verify_webhook(held, got.headers, got.body).type is EventType.WEBHOOK_PING
    with pytest.raises(WebhookVerificationError):
        verify_webhook([a_secret()], got.headers, got.body)


def test_endpoints_and_deliveries(world: World, receiver: Receiver) -> None:
    endpoint = world.bank.webhooks.create_endpoint(
        WebhookEndpointCreate(
            url=receiver.url, event_types=[EventType.APPLICATION_SUBMITTED], description="线索"
        )
    )
    receiver.secrets.append(endpoint.secret)
    read = world.bank.webhooks.get_endpoint(endpoint.id)
    assert read.version == endpoint.version
    assert not hasattr(read, "secret")
    updated = world.bank.webhooks.update_endpoint(read, WebhookEndpointUpdate(description="新线索"))
    assert (updated.description, updated.version) == ("新线索", read.version + 1)
    assert endpoint.id in {e.id for e in world.bank.webhooks.list_endpoints(page_size=1)}
    with pytest.raises(NotFound):  # not the portal's
        world.portal.webhooks.get_endpoint(endpoint.id)

    ping = world.bank.webhooks.send_test(endpoint.id)
    received(receiver, ping.webhook_id)
    again = world.bank.webhooks.redeliver(ping.id)
    assert again.id != ping.id
    assert again.webhook_id == ping.webhook_id  # the same message, sent again
    wait_until(lambda: receiver.seen(ping.webhook_id) == 2, timeout=DELIVERY_TIMEOUT)

    def delivered() -> bool:
        listed = world.bank.webhooks.list_deliveries(endpoint_id=endpoint.id)
        return {d.id for d in listed if d.status is DeliveryStatus.DELIVERED} >= {
            ping.id,
            again.id,
        }

    wait_until(delivered, timeout=DELIVERY_TIMEOUT)
    deliveries = world.bank.webhooks.list_deliveries(endpoint_id=endpoint.id).collect()
    assert unknown_fields(deliveries) == []
    world.bank.webhooks.delete_endpoint(endpoint.id)
    with pytest.raises(NotFound):
        world.bank.webhooks.get_endpoint(endpoint.id)
