"""Write bodies take strict JSON types: a flag is true/false, a count a JSON integer, a date an
ISO string; nothing is coerced (issue 11, item 6)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.gateway.conftest import Api, Stack
from tests.registry import data

# (field, a value of the wrong JSON type that lax mode would take)
FIRM_CASES = [
    ("is_high_tech", 1),
    ("is_green_listed", "true"),
    ("consent_matching", "yes"),
    ("employees", "45"),
    ("employees", 45.0),
    ("annual_revenue_yuan", True),
    ("industry_division", "39"),
    ("need_term_months", 12.0),
    ("established_on", 1_425_168_000),  # lax mode reads a number as a Unix time
    ("name", 12345),
]


def _refused(answer: Any, field: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json()["errors"]] == [field], answer.text


@pytest.mark.parametrize(("field", "value"), FIRM_CASES)
def test_a_firm_field_of_the_wrong_json_type_is_422_naming_it(
    stack: Stack, field: str, value: Any
) -> None:
    portal = stack.principal("portal")
    _refused(portal.post("/v1/firms", json=data.firm() | {field: value}), field)
    assert portal.get("/v1/firms").json()["data"] == []


@pytest.mark.parametrize(("field", "value"), FIRM_CASES)
def test_a_firm_update_of_the_wrong_json_type_is_422_naming_it(
    stack: Stack, field: str, value: Any
) -> None:
    portal = stack.principal("portal")
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    patched = portal.patch(f"/v1/firms/{firm_id}", json={field: value}, headers={"If-Match": "*"})
    _refused(patched, field)
    assert portal.get(f"/v1/firms/{firm_id}").json()["version"] == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("active", 0), ("requires_green", "1"), ("min_patents", "1"), ("rate_max_bp", 480.0)],
)
def test_a_product_field_of_the_wrong_json_type_is_422_naming_it(
    stack: Stack, field: str, value: Any
) -> None:
    bank = stack.institution("东莞测试银行")
    _refused(bank.post("/v1/products", json=data.product() | {field: value}), field)
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    patched = bank.patch(
        f"/v1/products/{product_id}", json={field: value}, headers={"If-Match": "*"}
    )
    _refused(patched, field)


def _firm_and_product(stack: Stack) -> tuple[Api, Api, int, int]:
    bank = stack.institution("东莞测试银行")
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    portal = stack.principal("portal")
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    return bank, portal, firm_id, product_id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("consent_share_profile", "yes"),
        ("consent_share_profile", 1),
        ("requested_amount_yuan", "2000000"),
        ("requested_term_months", 12.0),
        ("firm_id", "FIRM"),  # replaced by the firm's id as a string below
    ],
)
def test_an_application_of_the_wrong_json_type_is_422_naming_it(
    stack: Stack, field: str, value: Any
) -> None:
    _bank, portal, firm_id, product_id = _firm_and_product(stack)
    if value == "FIRM":
        value = str(firm_id)
    body = data.application(firm_id, product_id) | {field: value}
    _refused(portal.post("/v1/applications", json=body), field)
    assert portal.get("/v1/applications").json()["data"] == []


def test_a_decision_of_the_wrong_json_type_is_422_naming_it(stack: Stack) -> None:
    bank, portal, firm_id, product_id = _firm_and_product(stack)
    applied = portal.post("/v1/applications", json=data.application(firm_id, product_id)).json()
    approval = {
        "outcome": "approved",
        "approved_amount_yuan": "1000000",
        "rate_bp": 400,
        "term_months": 12,
    }
    decided = bank.post(f"/v1/applications/{applied['id']}/decision", json=approval)
    _refused(decided, "approved_amount_yuan")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/admin/keys", {"principal_id": "1"}, "principal_id"),
        ("/v1/admin/keys", {"principal_id": 1, "label": 7}, "label"),
        (
            "/v1/admin/principals",
            {"role": "institution", "name": "x", "institution_id": "1"},
            "institution_id",
        ),
        ("/v1/admin/institutions", {"name": 1, "kind": "bank"}, "name"),
        ("/v1/admin/models/train", {"auto_promote": "no"}, "auto_promote"),
    ],
)
def test_admin_bodies_take_strict_types(
    stack: Stack, path: str, body: dict[str, Any], field: str
) -> None:
    _refused(stack.admin.post(path, json=body), field)


def test_a_what_if_target_id_must_be_a_number_and_a_whole_threshold_may_be_either(
    stack: Stack,
) -> None:
    bank = stack.institution("东莞测试银行")
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    city = stack.principal("official")
    question = {"product_id": str(product_id), "criterion": "min_patents", "value": 2}
    _refused(city.post("/v1/stats/what-if", json=question), "product_id")
    # A threshold is a JSON number: 2 and 2.0 are the same, 2.5 of a count is not.
    for value in (2, 2.0):
        answer = city.post(
            "/v1/stats/what-if", json=question | {"product_id": product_id} | {"value": value}
        )
        assert answer.status_code == 200, answer.text
    fraction = question | {"product_id": product_id, "value": 2.5}
    refused = city.post("/v1/stats/what-if", json=fraction)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "value"


def test_the_right_types_are_taken_and_dates_stay_iso_strings(stack: Stack) -> None:
    portal = stack.principal("portal")
    body = data.firm(is_high_tech=True, consent_matching=False, established_on="2015-03-01")
    created = portal.post("/v1/firms", json=body)
    assert created.status_code == 201, created.text
    assert (created.json()["is_high_tech"], created.json()["established_on"]) == (
        True,
        "2015-03-01",
    )
    # Query strings are text by nature: their numbers and flags are read from it as before.
    listed = portal.get("/v1/firms", params={"limit": "5"})
    assert listed.status_code == 200, listed.text


def test_a_bulk_line_of_the_wrong_json_type_is_an_invalid_line_naming_the_field(
    stack: Stack,
) -> None:
    portal = stack.principal("portal")
    lines = [data.firm(seq=1), data.firm(seq=2, employees="45"), data.firm(seq=3, is_high_tech=1)]
    answer = portal.post(
        "/v1/firms/bulk",
        params={"import_id": "strict", "batch_size": 1},
        content=b"\n".join(orjson.dumps(line) for line in lines) + b"\n",
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    *results, summary = [orjson.loads(line) for line in answer.content.splitlines()]
    assert [r["status"] for r in results] == ["created", "invalid", "invalid"], results
    assert [[e["field"] for e in r["errors"]] for r in results[1:]] == [
        ["employees"],
        ["is_high_tech"],
    ]
    assert summary["summary"]["created"] == 1


@pytest.mark.parametrize("body", [b"", b"\n\n  \n"], ids=["empty", "blank-lines"])
def test_a_bulk_import_without_a_line_is_422_naming_the_body(stack: Stack, body: bytes) -> None:
    portal = stack.principal("portal")
    answer = portal.post(
        "/v1/firms/bulk",
        params={"import_id": "nothing"},
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    _refused(answer, "body")


def test_query_strings_are_read_as_numbers(stack: Stack) -> None:
    """Strict types are for JSON bodies: a query string is text, and `?amount_yuan=500000` is a
    number (the strict body type refused it, so every match request with an amount was a 422)."""
    portal = stack.principal("portal")
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    asked = {"amount_yuan": "500000", "term_months": "12"}
    answer = portal.get(f"/v1/firms/{firm_id}/matches", params=asked)
    assert answer.status_code == 200, answer.text
    for field, value in (("amount_yuan", "many"), ("amount_yuan", "0"), ("term_months", "361")):
        refused = portal.get(f"/v1/firms/{firm_id}/matches", params={field: value})
        _refused(refused, field)
