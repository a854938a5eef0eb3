"""Export revenue above total revenue is taken, with a warning the portal can show the firm
(issue 11, item 7). Exports are in US dollars, revenue in yuan: compared at 7.1 yuan per dollar."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.gateway.conftest import Stack
from tests.registry import data

WARNED = {"export_revenue_usd": 10_000_000, "annual_revenue_yuan": 1_000_000}


def _codes(answer: Any) -> list[tuple[str, str]]:
    return [(w["code"], w["field"]) for w in answer.json()["warnings"]]


def test_exports_above_revenue_are_taken_with_a_warning(stack: Stack) -> None:
    portal = stack.principal("portal")
    created = portal.post("/v1/firms", json=data.firm(**WARNED))
    assert created.status_code == 201, created.text
    assert _codes(created) == [("export_exceeds_revenue", "export_revenue_usd")]
    message = created.json()["warnings"][0]["message"]
    assert "US$10,000,000" in message
    assert "¥1,000,000" in message
    assert "7.1 yuan per US dollar" in message
    firm = portal.get(f"/v1/firms/{created.json()['id']}")
    assert firm.json()["export_revenue_usd"] == 10_000_000  # stored as given
    assert _codes(firm) == _codes(created)


def test_a_consistent_firm_has_an_empty_list_of_warnings(stack: Stack) -> None:
    portal = stack.principal("portal")
    created = portal.post("/v1/firms", json=data.firm(export_revenue_usd=1_000_000))
    assert created.json()["warnings"] == []
    assert portal.get("/v1/firms").json()["data"][0]["warnings"] == []


@pytest.mark.parametrize(
    ("revenue_yuan", "warned"),
    [(7_100_000, False), (7_099_999, True)],  # US$1,000,000 is ¥7,100,000 exactly
)
def test_the_line_is_exports_equal_to_revenue(
    stack: Stack, revenue_yuan: int, warned: bool
) -> None:
    portal = stack.principal("portal")
    body = data.firm(export_revenue_usd=1_000_000, annual_revenue_yuan=revenue_yuan)
    created = portal.post("/v1/firms", json=body)
    assert created.status_code == 201, created.text
    assert bool(created.json()["warnings"]) is warned


def test_an_update_that_makes_the_figures_inconsistent_carries_the_warning(stack: Stack) -> None:
    portal = stack.principal("portal")
    created = portal.post("/v1/firms", json=data.firm())
    assert created.json()["warnings"] == []
    url = f"/v1/firms/{created.json()['id']}"
    patched = portal.patch(url, json=WARNED, headers={"If-Match": created.headers["ETag"]})
    assert patched.status_code == 200, patched.text
    assert _codes(patched) == [("export_exceeds_revenue", "export_revenue_usd")]
    # The upsert by credit code (an update of this portal's firm) says so too.
    again = portal.post("/v1/firms", json=data.firm(**WARNED))
    assert again.status_code == 200, again.text
    assert _codes(again) == _codes(patched)
    fixed = portal.patch(
        url, json={"export_revenue_usd": 0}, headers={"If-Match": again.headers["ETag"]}
    )
    assert fixed.json()["warnings"] == []


def test_a_bulk_line_carries_its_warning(stack: Stack) -> None:
    portal = stack.principal("portal")
    lines = [data.firm(seq=1), data.firm(seq=2, **WARNED)]
    answer = portal.post(
        "/v1/firms/bulk",
        params={"import_id": "warned"},
        content=b"\n".join(orjson.dumps(line) for line in lines),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    first, second, _summary = [orjson.loads(line) for line in answer.content.splitlines()]
    assert first["status"] == second["status"] == "created"
    assert "warnings" not in first  # only lines with a warning carry the field
    assert [w["code"] for w in second["warnings"]] == ["export_exceeds_revenue"]


def test_the_warnings_are_documented(stack: Stack) -> None:
    schema = stack.client.get("/openapi.json").json()["components"]["schemas"]
    firm = schema["FirmPublic"]
    assert "warnings" in firm["required"]
    assert "7.1 yuan per US dollar" in firm["properties"]["warnings"]["description"]
    assert set(schema["InputWarning"]["required"]) == {"code", "field", "message"}
