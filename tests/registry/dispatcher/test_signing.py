"""Standard Webhooks signatures as a receiver checks them with the standardwebhooks package."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.registry.dispatcher.signing import signed_headers
from shared.schemas.webhooks import webhook_id
from tests.registry.dispatcher.data import new_secret

BODY = b'{"type":"application.submitted","timestamp":"2026-12-07T00:00:00Z","data":{"id":1}}'


def test_a_signed_body_verifies_and_parses() -> None:
    secret = new_secret()
    headers = signed_headers(webhook_id(7, 3), datetime.now(UTC), BODY, [secret])
    assert headers["webhook-id"] == "msg_7_3"
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers)["data"] == {"id": 1}


def test_a_tampered_body_fails() -> None:
    secret = new_secret()
    headers = signed_headers("msg_1", datetime.now(UTC), BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b'"id":1', b'"id":2'), headers)


def test_a_stale_timestamp_fails() -> None:
    secret = new_secret()
    sent = datetime.now(UTC) - timedelta(minutes=6)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, signed_headers("msg_1", sent, BODY, [secret]))


def test_the_wrong_secret_fails() -> None:
    headers = signed_headers("msg_1", datetime.now(UTC), BODY, [new_secret()])
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_during_a_rotation_both_secrets_verify() -> None:
    new, old = new_secret(), new_secret()
    headers = signed_headers("msg_1", datetime.now(UTC), BODY, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_a_signature_covers_the_message_id() -> None:
    secret = new_secret()
    headers = signed_headers("msg_1", datetime.now(UTC), BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})
