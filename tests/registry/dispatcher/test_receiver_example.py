"""The receiver example in docs/operations.md runs, and accepts what the dispatcher signs.

The example's code block is taken from the markdown and executed as it stands (only its
``handle`` is swapped for a recorder, to count what it processes), so the example cannot
drift from the dispatcher's headers or from the standardwebhooks API.
"""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from services.registry.dispatcher.signing import signed_headers

DOC = Path(__file__).resolve().parents[3] / "docs" / "operations.md"
HEADING = '### <a id="receiver"></a>'
CODE_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)
ROUTE = "/finmatch/webhooks"


def example_source() -> str:
    """The first python block of the receiver section (up to the next heading)."""
    text = DOC.read_text()
    start = text.index(HEADING)
    end = text.index("\n##", start + len(HEADING))  # the next heading ("# " is a comment)
    found = CODE_BLOCK.search(text, start, end)
    assert found, f"no python block under {HEADING} in {DOC.name}"
    return found.group(1)


def new_secret() -> str:
    # Fresh for each use: a secret shared by tests would hide a mixed-up key.
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


class Example:
    """The example's app, run in this process with ``secret`` as its WEBHOOK_SECRET."""

    def __init__(self, secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("WEBHOOK_SECRET", secret)
        namespace: dict[str, Any] = {"__name__": "receiver_example"}
        exec(compile(example_source(), f"{DOC.name} (receiver)", "exec"), namespace)
        self.handled: list[dict[str, Any]] = []
        namespace["handle"] = self.handled.append  # the route looks ``handle`` up when called
        self.client = TestClient(namespace["app"])

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        answer = self.client.post(
            ROUTE, content=body, headers=headers | {"Content-Type": "application/json"}
        )
        status: int = answer.status_code
        return status


def event_body(application_id: int = 7) -> bytes:
    """An application.submitted as the dispatcher serialises it."""
    return orjson.dumps(
        {
            "type": "application.submitted",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"application": {"id": application_id}, "product_id": 3, "version": 1},
        }
    )


def sign(
    body: bytes, *secrets: str, msg_id: str = "msg_1", at: datetime | None = None
) -> dict[str, str]:
    """The headers the dispatcher sends (its own signing code, one signature per secret)."""
    return signed_headers(msg_id, at or datetime.now(UTC), body, list(secrets))


def test_a_signed_event_is_answered_2xx_and_handled(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = new_secret()
    example = Example(secret, monkeypatch)
    body = event_body()
    assert example.post(body, sign(body, secret)) == 204
    assert example.handled == [orjson.loads(body)]


def test_a_bad_signature_is_a_400_and_not_handled(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = new_secret()
    example = Example(secret, monkeypatch)
    body = event_body()
    assert example.post(body, sign(body, new_secret())) == 400  # another endpoint's secret
    assert example.post(event_body(8), sign(body, secret)) == 400  # a body it did not sign
    stale = datetime.now(UTC) - timedelta(minutes=6)
    assert example.post(body, sign(body, secret, at=stale)) == 400  # a replay
    headers = sign(body, secret)
    del headers["webhook-signature"]
    assert example.post(body, headers) == 400
    malformed = sign(body, secret) | {"webhook-signature": "v1-no-comma"}
    assert example.post(body, malformed) == 400  # not a 500
    assert example.handled == []


def test_a_repeated_webhook_id_is_answered_2xx_and_handled_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = new_secret()
    example = Example(secret, monkeypatch)
    body = event_body()
    first = sign(body, secret, msg_id="msg_41")
    retry = sign(body, secret, msg_id="msg_41", at=datetime.now(UTC) + timedelta(seconds=30))
    assert first["webhook-signature"] != retry["webhook-signature"]  # a later attempt
    assert example.post(body, first) == 204
    assert example.post(body, retry) == 204
    other = event_body(8)
    assert example.post(other, sign(other, secret, msg_id="msg_42")) == 204
    assert [event["data"]["application"]["id"] for event in example.handled] == [7, 8]


def test_during_a_rotation_either_secret_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = new_secret(), new_secret()
    body = event_body()
    headers = sign(body, new, old)  # the dispatcher signs with both for 24 hours
    for held in (old, new):
        example = Example(held, monkeypatch)
        assert example.post(body, headers) == 204
        assert example.handled == [orjson.loads(body)]
