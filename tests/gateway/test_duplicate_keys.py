"""A JSON object that names a key twice is refused, naming the key and its path, never read as
"the last one wins" (issue 11, item 2)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from services.registry.config import RegistrySettings
from services.registry.main import create_app as create_registry
from tests.gateway.conftest import Api, Stack
from tests.registry import data

JSON = {"Content-Type": "application/json"}


def _with_repeat(body: dict[str, Any], key: str, value: Any) -> bytes:
    """``body`` as JSON with ``key`` given a second time, ``value`` last."""
    raw = orjson.dumps(body)
    return raw[:-1] + b"," + orjson.dumps(key) + b":" + orjson.dumps(value) + b"}"


def _refused(answer: Any, field: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    [error] = answer.json()["errors"]
    assert error["field"] == field, error
    assert error["type"] == "json_duplicate_key"
    assert f"body.{field}" in error["message"], error


def test_a_firm_with_a_repeated_key_is_422_naming_it_and_not_written(stack: Stack) -> None:
    portal = stack.principal("portal")
    raw = _with_repeat(data.firm(employees=40), "employees", 5000)
    _refused(portal.post("/v1/firms", content=raw, headers=JSON), "employees")
    assert portal.get("/v1/firms").json()["data"] == []
    # With an Idempotency-Key too (that route reads the body first, for its fingerprint).
    again = portal.post("/v1/firms", content=raw, headers=JSON | {"Idempotency-Key": "dup-1"})
    _refused(again, "employees")


def test_a_repeated_key_in_a_nested_object_names_its_path(stack: Stack) -> None:
    portal = stack.principal("portal")
    raw = orjson.dumps(data.firm())[:-1] + b',"extra":{"a":1,"a":2}}'
    _refused(portal.post("/v1/firms", content=raw, headers=JSON), "extra.a")


def test_every_write_body_refuses_a_repeated_key(stack: Stack) -> None:
    bank = stack.institution("东莞测试银行")
    portal = stack.principal("portal")
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    sent: list[tuple[Api, str, str, bytes, str]] = [
        (
            bank,
            "POST",
            "/v1/products",
            _with_repeat(data.product(), "rate_max_bp", 900),
            "rate_max_bp",
        ),
        (
            bank,
            "PATCH",
            f"/v1/products/{product_id}",
            b'{"active": true, "active": false}',
            "active",
        ),
        (portal, "PATCH", f"/v1/firms/{firm_id}", b'{"name": "a", "name": "b"}', "name"),
        (
            portal,
            "POST",
            "/v1/applications",
            _with_repeat(data.application(firm_id, product_id), "requested_amount_yuan", 1),
            "requested_amount_yuan",
        ),
        (
            stack.admin,
            "POST",
            "/v1/admin/keys",
            b'{"principal_id": 1, "principal_id": 2}',
            "principal_id",
        ),
        (
            stack.principal("official"),
            "POST",
            "/v1/stats/what-if",
            b'{"category": "ip_pledge", "criterion": "min_patents", "value": 1, "value": 9}',
            "value",
        ),
    ]
    for api, method, url, raw, field in sent:
        headers = JSON | {"If-Match": "*"} if method == "PATCH" else JSON
        _refused(api.request(method, url, content=raw, headers=headers), field)
    assert portal.get(f"/v1/firms/{firm_id}").json()["version"] == 1
    assert bank.get(f"/v1/products/{product_id}").json()["version"] == 1
    assert portal.get("/v1/applications").json()["data"] == []


def test_a_bulk_line_with_a_repeated_key_is_an_invalid_line_and_the_import_goes_on(
    stack: Stack,
) -> None:
    portal = stack.principal("portal")
    lines = [
        orjson.dumps(data.firm(seq=1)),
        _with_repeat(data.firm(seq=2, employees=40), "employees", 5000),
        orjson.dumps(data.firm(seq=3)),
    ]
    answer = portal.post(
        "/v1/firms/bulk",
        params={"import_id": "dup", "batch_size": 1},
        content=b"\n".join(lines) + b"\n",
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    *results, summary = [orjson.loads(line) for line in answer.content.splitlines()]
    assert [r["status"] for r in results] == ["created", "invalid", "created"], results
    [error] = results[1]["errors"]
    assert error["field"] == "employees", error
    assert "duplicate key" in error["message"], error
    assert summary["summary"] == {
        "lines": 3,
        "created": 2,
        "updated": 0,
        "invalid": 1,
        "not_written": 0,
    }


def test_the_registry_refuses_a_repeated_key_sent_to_it_directly(stack: Stack) -> None:
    """The rule holds behind the gateway too: a caller with the internal token that sends the
    registry a body by hand (not re-encoded by the gateway) cannot slip a repeated key past."""
    portal = stack.principal("portal")
    registry = create_registry(
        RegistrySettings(internal_token="test-internal-token", database_url="unused://"),
        stack.engine,
    )
    headers = JSON | {
        "X-Internal-Token": "test-internal-token",
        "X-Principal-Id": str(portal.principal_id),  # type: ignore[attr-defined]
    }
    with TestClient(registry) as client:
        raw = _with_repeat(data.firm(employees=40), "employees", 5000)
        _refused(client.post("/v1/firms", content=raw, headers=headers), "employees")
        event = {"firm_id": 1, "product_id": 1, "rank": 1, "score": 1.0}
        batch = b'{"events": [' + _with_repeat(event, "rank", 2) + b"]}"
        refused = client.post("/internal/match-events", content=batch, headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "events.0.rank"
    assert portal.get("/v1/firms").json()["data"] == []


@pytest.mark.parametrize("raw", [b'{"name": ', b'{"a": 1,}'])
def test_malformed_json_is_still_reported_where_it_breaks(stack: Stack, raw: bytes) -> None:
    portal = stack.principal("portal")
    answer = portal.post("/v1/firms", content=raw, headers=JSON)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "body"
    assert "at character" in answer.json()["errors"][0]["message"]
