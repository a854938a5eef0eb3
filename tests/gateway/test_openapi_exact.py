"""The OpenAPI schema states what the gateway enforces (issue 15, item 5), so that a client
generated from it neither meets an undocumented status nor sends a request that is refused:
400 and 403 are documented, the cursor's form and the what-if's "exactly one of product_id
and category" are in the schema, and a 405 names every method its path serves."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import orjson
import pytest

from services.gateway.openapi import OPERATION_CODES
from services.gateway.openapi._problems import UNAUTHENTICATED
from services.registry.pagination import encode_cursor
from shared.error_codes import PUBLIC_CODES, ErrorCode
from shared.errors import PROBLEM_JSON
from shared.schemas.page import CURSOR_PATTERN
from tests.gateway.conftest import Stack
from tests.registry import data


def _openapi(stack: Stack) -> dict[str, Any]:
    schema: dict[str, Any] = stack.client.app.openapi()  # type: ignore[attr-defined]
    return schema


def test_every_operation_documents_400_and_403(stack: Stack) -> None:
    operations = [
        (method, path, operation)
        for path, item in _openapi(stack)["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) > 40
    missing = [
        f"{method.upper()} {path}"
        for method, path, operation in operations
        if not {"400", "403"} <= set(operation["responses"])
    ]
    assert not missing, missing
    documented = operations[0][2]["responses"]["400"]["content"]
    assert PROBLEM_JSON in documented


def test_an_unreadable_body_is_the_documented_400(stack: Stack) -> None:
    portal = stack.principal("portal")
    answer = portal.post(
        "/v1/firms",
        content=b'{"name": "\xff"}',  # not UTF-8: FastAPI cannot decode it, let alone parse it
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert answer.json()["code"] == "http_error"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/firms", "GET, POST"),
        ("PUT", "/v1/firms", "GET, POST"),
        ("OPTIONS", "/v1/firms/7", "DELETE, GET, PATCH"),
        ("POST", "/v1/firms/7", "DELETE, GET, PATCH"),
        ("GET", "/v1/decisions/history", "POST"),
        ("OPTIONS", "/v1/stats/what-if", "POST"),
    ],
)
def test_a_405_names_every_method_of_its_path(
    stack: Stack, method: str, path: str, allowed: str
) -> None:
    """Starlette named only the first matching route's methods (``Allow: POST`` on /v1/firms,
    though GET is served): FastAPI makes one route per operation."""
    answer = stack.admin.request(method, path)
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == allowed
    documented = {m.upper() for m in _openapi(stack)["paths"][_template(path)]}
    assert set(allowed.split(", ")) == documented


def _template(path: str) -> str:
    return re.sub(r"/\d+$", "/{firm_id}", path)


def test_every_issued_cursor_has_the_documented_form() -> None:
    pattern = re.compile(CURSOR_PATTERN)
    ids = [0, 1, 9, 10, 99, 100, 12_345, 10**17, 10**18 - 1, 8 * 10**18 + 12_345]
    for last_id in ids + list(range(1, 2_000, 7)):
        assert pattern.search(encode_cursor(last_id)), last_id
    assert not pattern.search(encode_cursor(-5))
    assert not pattern.search(encode_cursor(10**19))  # 20 digits: past any 63-bit id


def test_cursors_follow_the_schema(stack: Stack) -> None:
    portal = stack.principal("portal")
    for seq in range(3):
        assert portal.post("/v1/firms", json=data.firm(seq=seq)).status_code == 201
    first = portal.get("/v1/firms", params={"limit": 2})
    cursor = first.json()["next_cursor"]
    assert re.search(CURSOR_PATTERN, cursor)
    assert len(portal.get("/v1/firms", params={"cursor": cursor}).json()["data"]) == 1
    # Of the documented form but past every id: an empty page, not a refusal.
    beyond = portal.get("/v1/firms", params={"cursor": encode_cursor(8 * 10**18)})
    assert beyond.status_code == 200, beyond.text
    assert beyond.json() == {"data": [], "next_cursor": None}
    # Not of it: refused at the gateway, naming the field.
    for bad in ("aWQ6MQ==", "aWQ6MR", encode_cursor(-5), "%%%"):
        for url in ("/v1/firms", "/v1/products"):
            refused = portal.get(url, params={"cursor": bad})
            assert refused.status_code == 422, (url, bad, refused.text)
            assert [e["field"] for e in refused.json()["errors"]] == ["cursor"]


PRODUCT = -1  # stands for the id of a product made by the test
CATEGORY = data.product()["category"]
WHAT_IF_BODIES = [
    ({"product_id": PRODUCT}, True),
    ({"product_id": PRODUCT, "category": None}, True),
    ({"category": CATEGORY}, True),
    ({"category": CATEGORY, "product_id": None}, True),
    ({"product_id": PRODUCT, "category": CATEGORY}, False),
    ({}, False),
    ({"product_id": None, "category": None}, False),
]


@pytest.mark.parametrize(("target", "valid"), WHAT_IF_BODIES)
def test_the_what_if_schema_states_exactly_one_target(
    stack: Stack, target: dict[str, Any], valid: bool
) -> None:
    """The schema and the gateway agree on every combination of product_id and category."""
    made = stack.institution("东莞测试银行").post("/v1/products", json=data.product())
    assert made.status_code == 201, made.text
    ids = {"product_id": made.json()["id"]} if target.get("product_id") == PRODUCT else {}
    body = {"criterion": "min_employees", "value": 5} | target | ids
    spec = _openapi(stack)
    schema = {**spec["components"]["schemas"]["WhatIfRequest"], "components": spec["components"]}
    # Refs name #/components/schemas/...: the components are kept at this document's root.
    assert jsonschema.Draft202012Validator(schema).is_valid(body) is valid
    answer = stack.principal("official").post("/v1/stats/what-if", json=body)
    assert (answer.status_code == 200) is valid, answer.text
    if not valid:
        assert answer.status_code == 422


# --- problem codes, examples and NDJSON bodies -------------------------------------------------


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def _validator(schema: dict[str, Any], spec: dict[str, Any]) -> jsonschema.Validator:
    return jsonschema.Draft202012Validator({**schema, "components": spec["components"]})


def test_the_error_code_reference_lists_every_public_code(stack: Stack) -> None:
    answer = stack.principal("portal").get("/v1/reference/error-codes")
    assert answer.status_code == 200, answer.text
    listed = {entry["code"]: entry for entry in answer.json()}
    assert set(listed) == {code.value for code in PUBLIC_CODES}
    assert listed["stale_version"]["statuses"] == [412]
    assert "If-Match" in listed["stale_version"]["en"]
    assert "过时" in listed["stale_version"]["zh"]
    assert ErrorCode.KEY_REVOKED.value not in listed  # the registry tells the gateway only


def test_every_operation_lists_its_problem_codes_with_an_example_each(stack: Stack) -> None:
    spec = _openapi(stack)
    problem = _validator({"$ref": "#/components/schemas/ProblemDetails"}, spec)
    operations = _operations(spec)
    assert {(m, p) for m, p, _ in operations} - UNAUTHENTICATED == set(OPERATION_CODES)
    for method, path, operation in operations:
        if (method, path) in UNAUTHENTICATED:
            continue
        listed = operation["x-problem-codes"]
        assert {"missing_key", "invalid_key", "rate_limited"} <= {e["code"] for e in listed}
        for entry in listed:
            code = ErrorCode.of(entry["code"])
            assert not code.internal, (method, path, code)
            assert entry["statuses"] == list(code.statuses)
            for status in code.statuses:
                response = operation["responses"][str(status)]
                assert f"`{code}`" in response["description"], (method, path, code)
                example = response["content"][PROBLEM_JSON]["examples"][code]["value"]
                assert example["code"] == code
                assert example["status"] == status
                problem.validate(example)


def test_every_request_and_answer_has_an_example_that_its_schema_accepts(stack: Stack) -> None:
    spec = _openapi(stack)
    for method, path, operation in _operations(spec):
        contents = [("request", operation.get("requestBody", {}).get("content", {}))]
        contents += [
            (status, response.get("content", {}))
            for status, response in operation["responses"].items()
            if status.startswith("2") and status != "204"
        ]
        for where, content in contents:
            if where == "request" and "requestBody" not in operation:
                continue
            assert content, (method, path, where)
            for media_type, media in content.items():
                assert "example" in media, (method, path, where, media_type)
                if media_type == "application/json" or (
                    where == "request" and media_type == "application/x-ndjson"
                ):
                    errors = list(_validator(media["schema"], spec).iter_errors(media["example"]))
                    assert not errors, (method, path, where, [e.message for e in errors[:3]])
    assert len(_operations(spec)) > 50


@pytest.mark.parametrize(("path", "role"), [("/v1/firms/bulk", "portal")])
def test_an_ndjson_body_is_an_array_of_lines_and_its_example_imports(
    stack: Stack, path: str, role: str
) -> None:
    """A generator serialises the body from its item schema, one line per item; the schema's
    own example, sent that way, is imported."""
    spec = _openapi(stack)
    media = spec["paths"][path]["post"]["requestBody"]["content"]["application/x-ndjson"]
    assert media["schema"]["type"] == "array"
    assert media["schema"]["items"] == {"$ref": "#/components/schemas/FirmCreate"}
    body = b"".join(orjson.dumps(item) + b"\n" for item in media["example"])
    answer = stack.principal(role).post(
        path,
        params={"import_id": "example"},
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    *lines, summary = [orjson.loads(line) for line in answer.content.splitlines()]
    assert [line["status"] for line in lines] == ["created"], lines
    assert summary["summary"]["created"] == 1


def test_history_lines_are_documented_by_their_model(stack: Stack) -> None:
    spec = _openapi(stack)
    media = spec["paths"]["/v1/decisions/history"]["post"]["requestBody"]["content"]
    schema = media["application/x-ndjson"]["schema"]
    assert schema["items"] == {"$ref": "#/components/schemas/HistoryLine"}
    assert "HistoryLine" in spec["components"]["schemas"]
