"""The criteria banks set that could not be said before, end to end through the public API.

For each of min_invention_patents, min_trademarks, max_years_established and
min_total_assets_yuan: an institution lists a product with it (bad values are a 422 naming
the field), a firm at the boundary is matched with the rule as a reason, a firm one unit
short gets a near miss with the exact gap in Chinese and English, an official's what-if can
move it, and the dashboard offers it with its names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import Api, Stack
from tests.registry import data

TODAY = date.today()


def _founded(years: float) -> str:
    """A founding date ``years`` ago by the calendar: the anniversary of the whole years,
    then the fraction as days of a common year (within a day of the exact age)."""
    whole = int(years)
    anniversary = TODAY.replace(year=TODAY.year - whole, day=min(TODAY.day, 28))
    return (anniversary - timedelta(days=round((years - whole) * 365))).isoformat()


@dataclass(frozen=True)
class Case:
    code: str
    setting: int
    at_boundary: dict[str, Any]  # firm fields that meet the setting exactly (or nearly, for age)
    short: dict[str, Any]  # firm fields one unit on the failing side
    gap: float
    zh: str
    en: str
    actionable: bool
    loosened: int  # a what-if value that admits the short firm


CASES = [
    Case(
        "min_invention_patents",
        3,
        # Utility patents do not count: 3 invention patents pass, 2 + 10 utility ones do not.
        {"invention_patents": 3, "utility_patents": 0},
        {"invention_patents": 2, "utility_patents": 10},
        1,
        "发明专利 2 件，距要求 3 件 差 1 件",
        "2 invention patents; the product requires 3 (1 short)",
        True,
        2,
    ),
    Case(
        "min_trademarks",
        3,
        {"trademarks": 3},
        {"trademarks": 2},
        1,
        "注册商标 2 件，距要求 3 件 差 1 件",
        "2 registered trademarks; the product requires 3 (1 short)",
        True,
        2,
    ),
    Case(
        "max_years_established",
        5,
        {"established_on": _founded(4.5)},
        {"established_on": _founded(6.5)},
        1.5,
        "成立 6.5 年，超过该产品上限 5 年（超出 1.5 年）",
        "Established 6.5 years ago, over the product's limit of 5 years (1.5 years over)",
        False,  # a firm cannot get younger
        7,
    ),
    Case(
        "min_total_assets_yuan",
        20_000_000,
        {"total_assets_yuan": 20_000_000},
        {"total_assets_yuan": 19_000_000},
        1_000_000,
        "资产总额 1,900万元，距要求 2,000万元 差 100万元",
        "Total assets ¥19.0M; the product requires ¥20.0M (¥1.0M short)",
        True,
        19_000_000,
    ),
]


def _product(case: Case, **overrides: Any) -> dict[str, Any]:
    return data.product(min_patents=None, **{case.code: case.setting} | overrides)


def _patch(bank: Api, product_id: int, body: dict[str, Any]) -> httpx.Response:
    etag = bank.get(f"/v1/products/{product_id}").headers["etag"]
    return bank.patch(f"/v1/products/{product_id}", json=body, headers={"If-Match": etag})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.code)
def test_a_new_criterion_end_to_end(stack: Stack, case: Case) -> None:
    bank = stack.institution("东莞测试银行")
    created = bank.post("/v1/products", json=_product(case))
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]
    assert bank.get(f"/v1/products/{product_id}").json()[case.code] == case.setting

    portal = stack.principal("portal")
    at = portal.post("/v1/firms", json=data.firm(1, **case.at_boundary))
    short = portal.post("/v1/firms", json=data.firm(2, **case.short))
    assert at.status_code == short.status_code == 201, (at.text, short.text)

    matched = portal.get(f"/v1/firms/{at.json()['id']}/matches").json()
    [ranked] = matched["ranked"]
    assert ranked["product_id"] == product_id
    assert case.code in [reason["code"] for reason in ranked["reasons"]]

    for lang, message in (("zh", case.zh), ("en", case.en)):
        answer = portal.get(f"/v1/firms/{short.json()['id']}/matches", params={"lang": lang})
        body = answer.json()
        assert body["ranked"] == []
        [miss] = body["near_misses"]
        [unmet] = miss["unmet"]
        assert (unmet["code"], unmet["message"]) == (case.code, message)
        assert unmet["gap"] == pytest.approx(case.gap, abs=4 / 365)  # a few days, either side
        assert unmet["actionable"] is case.actionable

    official = stack.principal("official")
    question = {"product_id": product_id, "criterion": case.code, "value": case.loosened}
    result = official.post("/v1/stats/what-if", json=question)
    assert result.status_code == 200, result.text
    assert (result.json()["baseline_eligible"], result.json()["newly_qualifying"]) == (1, 1)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.code)
def test_bad_values_of_a_new_criterion_name_the_field(stack: Stack, case: Case) -> None:
    bank = stack.institution("东莞测试银行")
    negative = bank.post("/v1/products", json=_product(case, **{case.code: -1}))
    assert negative.status_code == 422
    assert case.code in negative.text
    product_id = bank.post("/v1/products", json=_product(case)).json()["id"]
    patched = _patch(bank, product_id, {case.code: -1})
    assert patched.status_code == 422
    assert case.code in patched.text
    moved = _patch(bank, product_id, {case.code: case.loosened})
    assert moved.status_code == 200, moved.text
    assert moved.json()[case.code] == case.loosened
    cleared = _patch(bank, product_id, {case.code: None})
    assert cleared.json()[case.code] is None


def test_a_start_up_limit_below_the_minimum_age_is_refused(stack: Stack) -> None:
    bank = stack.institution("东莞测试银行")
    both = data.product(min_years_established=6, max_years_established=5)
    refused = bank.post("/v1/products", json=both)
    assert refused.status_code == 422
    assert "max_years_established" in refused.text
    product_id = bank.post("/v1/products", json=data.product(min_years_established=3)).json()["id"]
    # Checked against the stored minimum too, not only within the patch.
    patched = _patch(bank, product_id, {"max_years_established": 2})
    assert patched.status_code == 422
    assert "max_years_established" in patched.text


def test_the_openapi_schema_describes_the_new_criteria(stack: Stack) -> None:
    schema = stack.client.get("/openapi.json").json()["components"]["schemas"]
    fields = schema["ProductCreate"]["properties"]
    for case in CASES:
        assert case.code in fields
        assert "reads the firm's" in fields[case.code]["description"]
    criteria = json.dumps(schema["WhatIfRequest"]["properties"]["criterion"])
    assert all(case.code in criteria for case in CASES)


def test_the_dashboard_offers_the_new_criteria_with_their_names(stack: Stack) -> None:
    official = stack.principal("official")
    signed_in = stack.client.post(
        "/dashboard/session", data={"key": official.key}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    page = stack.client.get("/dashboard").text
    embedded = re.search(r'<script type="application/json" id="context">(.*?)</script>', page)
    assert embedded is not None
    offered = {c["code"]: c for c in json.loads(embedded.group(1))["what_if_criteria"]}
    for case in CASES:
        assert offered[case.code]["zh"]
        assert offered[case.code]["en"]
    assert offered["max_years_established"]["en"] == "Maximum years established"
    assert offered["min_years"]["zh"] == "成立年限下限（年）"  # the names the API always used
