"""Every write body refuses a field it does not know, naming it (never silently dropped)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.conftest import Stack
from tests.registry import data


def _firm_and_product(stack: Stack) -> tuple[Any, Any, int, int]:
    bank = stack.institution("东莞测试银行")
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    portal = stack.principal("portal")
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    return bank, portal, firm_id, product_id


def test_an_application_with_an_unknown_field_is_422_and_not_written(stack: Stack) -> None:
    _bank, portal, firm_id, product_id = _firm_and_product(stack)
    body = data.application(firm_id, product_id, submitted_at="2020-01-01T00:00:00Z")
    refused = portal.post("/v1/applications", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "submitted_at"
    assert portal.get("/v1/applications").json()["data"] == []


@pytest.mark.parametrize(
    ("path", "role", "body"),
    [
        ("/v1/firms", "portal", data.firm() | {"size_class": "micro"}),  # derived, not entered
        ("/v1/products", "institution", data.product() | {"min_patent": 1}),  # a misspelling
        (
            "/v1/stats/what-if",
            "official",
            {
                "category": "ip_pledge",
                "criterion": "min_years",
                "value": 1,
                "dry_run": True,
            },
        ),
        ("/v1/admin/models/train", "admin", {"auto_promte": False}),  # a misspelling
    ],
)
def test_every_write_body_names_the_field_it_does_not_know(
    stack: Stack, path: str, role: str, body: dict[str, Any]
) -> None:
    if role == "institution":
        api = stack.institution("东莞测试银行")
    elif role == "official":
        api = stack.principal("official")
    else:
        api = stack.principal(role)
    refused = api.post(path, json=body)
    assert refused.status_code == 422, refused.text
    known = set(data.firm()) | set(data.product()) | {"category", "criterion", "value"}
    [unknown] = [e["field"] for e in refused.json()["errors"]]
    assert unknown not in known


def test_a_decision_with_an_unknown_field_is_422(stack: Stack) -> None:
    bank, portal, firm_id, product_id = _firm_and_product(stack)
    applied = portal.post("/v1/applications", json=data.application(firm_id, product_id)).json()
    refused = bank.post(
        f"/v1/applications/{applied['id']}/decision",
        json={"outcome": "rejected", "rejection_reason": "high_leverage", "decided_at": "x"},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "decided_at"
