"""examples/receiver.py's WebhookReceiver in this process: it believes only what is signed with
its secret and fresh, answers every good delivery 204, and hands each webhook-id on once."""

from __future__ import annotations

import base64
import importlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from finmatch_client.models import EventType
from tests.examples.conftest import EXAMPLES


@pytest.fixture
def receiver_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the examples import each other by name
    return importlib.import_module("receiver")


@pytest.fixture
def running(receiver_module: ModuleType) -> Iterator[Any]:
    with receiver_module.WebhookReceiver(quiet=True) as receiver:
        yield receiver


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def delivery(key: str, webhook_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    at = at or datetime.now(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(key).sign(webhook_id, at, body.decode()),
        "content-type": "application/json",
    }


def body(event_type: str = "application.decided", application_id: int = 7) -> bytes:
    return (
        b'{"type": "%s", "timestamp": "2026-12-01T08:00:00Z", "data": {"application": {"id": %d}}}'
        % (event_type.encode(), application_id)
    )


def post(receiver: Any, content: bytes, headers: dict[str, str]) -> int:
    status: int = httpx.post(receiver.url, content=content, headers=headers, timeout=5).status_code
    return status


def test_a_signed_delivery_is_handed_on_once(running: Any) -> None:
    key = secret()
    running.secrets.append(key)
    content = body()
    headers = delivery(key, "msg_1", content)
    assert post(running, content, headers) == 204
    assert post(running, content, headers) == 204  # a retry: answered, not handled again
    event = running.wait_for(EventType.APPLICATION_DECIDED, timeout=5)
    assert (event.id, event.data["application"]["id"]) == ("msg_1", 7)
    with pytest.raises(TimeoutError):
        running.wait_for(EventType.APPLICATION_DECIDED, timeout=0.5)


def test_what_is_not_provably_ours_is_refused(running: Any) -> None:
    key = secret()
    running.secrets.append(key)
    content = body()
    tampered = body(application_id=8)
    old = datetime.now(UTC) - timedelta(minutes=10)
    for sent, headers in (
        (tampered, delivery(key, "msg_2", content)),  # the body changed after signing
        (content, delivery(secret(), "msg_3", content)),  # someone else's secret
        (content, delivery(key, "msg_4", content, at=old)),  # a replay
        (content, {"content-type": "application/json"}),  # not signed at all
    ):
        assert post(running, sent, headers) == 400
    assert running.rejected == [
        "bad_signature",
        "bad_signature",
        "stale",
        "missing_headers",
    ]
    assert running.events.empty()


def test_wait_for_sets_other_events_aside(running: Any) -> None:
    key = secret()
    running.secrets.append(key)
    for n, (kind, application) in enumerate(
        [("webhook.ping", 0), ("application.decided", 5), ("application.decided", 6)]
    ):
        content = body(kind, application)
        assert post(running, content, delivery(key, f"msg_{n}", content)) == 204
    event = running.wait_for(
        EventType.APPLICATION_DECIDED,
        where=lambda e: e.data["application"]["id"] == 6,
        timeout=5,
    )
    assert event.id == "msg_2"
