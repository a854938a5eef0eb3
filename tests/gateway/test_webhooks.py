"""The public webhooks API through the gateway: strict bodies, If-Match, keys, SSRF refusals."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.registry.config import RegistrySettings
from services.registry.main import create_app as create_registry
from tests.gateway.conftest import BOOTSTRAP, TOKEN, Api, Stack, build_stack

HOOK = {"url": "http://127.0.0.1:9/hook", "event_types": ["application.decided"]}


def _fields(answer: httpx.Response) -> list[str]:
    assert answer.headers["content-type"] == "application/problem+json", answer.text
    return [error["field"] for error in answer.json()["errors"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**HOOK, "event_types": ["application.created"]}, "event_types.0"),
        ({**HOOK, "event_types": []}, "event_types"),
        ({**HOOK, "enabled": 1}, "enabled"),
        ({**HOOK, "url": ["http://127.0.0.1/"]}, "url"),
        ({**HOOK, "url": "127.0.0.1:9/hook"}, "url"),
        ({**HOOK, "secret": "whsec_mine"}, "secret"),
        ({**HOOK, "description": "x" * 501}, "description"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(
    stack: Stack, body: dict[str, object], field: str
) -> None:
    answer = stack.principal("portal").post("/v1/webhooks/endpoints", json=body)
    assert answer.status_code == 422, answer.text
    assert field in _fields(answer)


def test_a_portal_cannot_subscribe_to_an_institutions_event(stack: Stack) -> None:
    body = {**HOOK, "event_types": ["application.decided", "consent.revoked"]}
    refused = stack.principal("portal").post("/v1/webhooks/endpoints", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "event_type_not_received"
    assert _fields(refused) == ["event_types"]
    bank = stack.institution("甲银行")
    accepted = bank.post(
        "/v1/webhooks/endpoints", json={**body, "event_types": ["consent.revoked"]}
    )
    assert accepted.status_code == 201, accepted.text


def test_a_repeated_key_is_refused(stack: Stack) -> None:
    body = b'{"url": "http://127.0.0.1:9/a", "url": "http://127.0.0.1:9/b", "event_types": []}'
    answer = stack.principal("portal").post(
        "/v1/webhooks/endpoints", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert "url" in _fields(answer)


def test_the_endpoint_lifecycle(stack: Stack) -> None:
    portal = stack.principal("portal")
    created = portal.post("/v1/webhooks/endpoints", json=HOOK)
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == '"1"'
    secret = created.json()["secret"]
    url = f"/v1/webhooks/endpoints/{created.json()['id']}"
    read = portal.get(url)
    assert read.status_code == 200
    assert "secret" not in read.json()

    missing = portal.patch(url, json={"description": "leads"})
    assert missing.status_code == 428
    assert _fields(missing) == ["If-Match"]
    assert (
        portal.patch(url, json={"description": "x"}, headers={"If-Match": '"9"'}).status_code == 412
    )
    patched = portal.patch(url, json={"description": "leads"}, headers={"If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] == '"2"'
    assert patched.json()["description"] == "leads"

    rotated = portal.post(f"{url}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] not in (secret, None)
    assert rotated.json()["previous_secret_expires_at"] is not None

    ping = portal.post(f"{url}/test")
    assert ping.status_code == 202, ping.text
    assert ping.json()["event_type"] == "webhook.ping"
    log = portal.get("/v1/webhooks/deliveries", params={"endpoint_id": created.json()["id"]})
    assert [d["id"] for d in log.json()["data"]] == [ping.json()["id"]]
    assert portal.get("/v1/webhooks/deliveries", params={"status": "gone"}).status_code == 422
    again = portal.post(f"/v1/webhooks/deliveries/{ping.json()['id']}/redeliver")
    assert again.status_code == 202, again.text
    assert again.json()["event_id"] == ping.json()["event_id"]

    assert portal.delete(url).status_code == 204
    assert portal.get(url).status_code == 404


def test_a_keyed_create_is_made_once_and_its_secret_never_stored(stack: Stack) -> None:
    """The secret is shown once: neither the gateway's store nor the registry's record keeps
    it, so a repeat of the key makes nothing and answers 409 (as a new API key does)."""
    portal = stack.principal("portal")
    key = {"Idempotency-Key": "hook-create-1"}
    first = portal.post("/v1/webhooks/endpoints", json=HOOK, headers=key)
    assert first.status_code == 201, first.text
    assert first.headers["Cache-Control"] == "no-store"
    second = portal.post("/v1/webhooks/endpoints", json=HOOK, headers=key)
    assert second.status_code == 409, second.text
    assert second.json()["code"] == "idempotency_secret_not_replayed"
    assert first.json()["secret"] not in second.text
    assert len(portal.get("/v1/webhooks/endpoints").json()["data"]) == 1
    rotated = portal.post(
        f"/v1/webhooks/endpoints/{first.json()['id']}/rotate-secret",
        headers={"Idempotency-Key": "hook-rotate-1"},
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["Cache-Control"] == "no-store"
    again = portal.post(
        f"/v1/webhooks/endpoints/{first.json()['id']}/rotate-secret",
        headers={"Idempotency-Key": "hook-rotate-1"},
    )
    assert again.status_code == 409  # not rotated twice, and the secret not shown again
    assert rotated.json()["secret"] not in again.text


def test_a_new_api_key_is_never_stored_by_the_gateway(stack: Stack) -> None:
    principal = stack.admin.post(
        "/v1/admin/principals", json={"role": "portal", "name": "portal k"}
    ).json()
    key = {"Idempotency-Key": "key-create-1"}
    body = {"principal_id": principal["id"]}
    first = stack.admin.post("/v1/admin/keys", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert first.headers["Cache-Control"] == "no-store"
    second = stack.admin.post("/v1/admin/keys", json=body, headers=key)
    assert second.status_code == 409, second.text
    assert first.json()["key"] not in second.text


@pytest.fixture
def production_stack(engine: Engine) -> Iterator[Stack]:
    """The gateway over a registry configured as deployed (https and public targets only)."""
    registry = create_registry(
        RegistrySettings(
            internal_token=TOKEN,
            database_url="unused://",
            environment="production",
            credit_code_hash_key="test-credit-code-hash-key",
        ),
        engine,
    )
    client, _manager = build_stack(engine, registry_transport=httpx.ASGITransport(app=registry))
    with client:
        yield Stack(client=client, admin=Api(client, BOOTSTRAP), engine=engine)


@pytest.mark.parametrize(
    "url",
    ["http://93.184.216.34/hook", "https://192.168.1.10/hook", "https://[fe80::1]/hook"],
)
def test_a_deployed_registry_refuses_unsafe_targets(production_stack: Stack, url: str) -> None:
    portal = production_stack.principal("portal")
    answer = portal.post("/v1/webhooks/endpoints", json={**HOOK, "url": url})
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "unsafe_webhook_url"
    assert _fields(answer) == ["url"]
    safe = portal.post("/v1/webhooks/endpoints", json={**HOOK, "url": "https://93.184.216.34/"})
    assert safe.status_code == 201, safe.text


def test_the_schema_documents_the_webhooks_api(stack: Stack) -> None:
    client: TestClient = stack.client
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    create = paths["/v1/webhooks/endpoints"]["post"]
    assert "secret" in create["description"]
    assert "webhook-id" in create["description"]
    # Who may subscribe to what, from the registry's rule: consent.revoked is an institution's.
    assert (
        "institution: `application.submitted`, `application.withdrawn`, `consent.revoked`;"
        in (create["description"])
    )
    assert "msg_<event id>_<endpoint id>" in create["description"]
    assert "/v1/webhooks/deliveries/{delivery_id}/redeliver" in paths
