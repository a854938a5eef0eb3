"""A bank previews whom a product would reach: a draft (POST /v1/products/preview) or its own
listed product (GET /v1/products/{id}/reach); aggregates only, small groups withheld."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.conftest import Api, Stack
from tests.registry import data

TANGXIA, HUMEN = "441900116", "441900121"


def populate(stack: Stack) -> Api:
    """Nine firms with a need in Tangxia (patents 0–8), two in Humen, and firms the preview must
    not count: one without consent to matching, one without a need."""
    portal = stack.principal("portal")
    seq = iter(range(1, 100))
    for patents in range(9):
        body = data.firm(next(seq), invention_patents=0, utility_patents=patents)
        assert portal.post("/v1/firms", json=body).status_code == 201
    for _ in range(2):
        body = data.firm(next(seq), town_code=HUMEN, utility_patents=8, invention_patents=0)
        assert portal.post("/v1/firms", json=body).status_code == 201
    ignored = [
        data.firm(next(seq), utility_patents=8, consent_matching=False),
        data.firm(next(seq), utility_patents=8, need_amount_yuan=None, need_term_months=None),
    ]
    for body in ignored:
        assert portal.post("/v1/firms", json=body).status_code == 201
    return portal


def test_a_draft_previews_its_reach_without_being_saved(stack: Stack) -> None:
    populate(stack)
    bank = stack.institution("东莞测试银行")
    draft = data.product(min_patents=5, elig_size_classes=[])
    answer = bank.post("/v1/products/preview", json=draft)
    assert answer.status_code == 200, answer.text
    reach: dict[str, Any] = answer.json()
    assert reach["product_id"] is None
    assert reach["firms_considered"] == 11  # consenting, with a need
    assert reach["eligible"] == 6  # patents 5..8 in Tangxia (4) and both Humen firms
    towns = {c["key"]: c for c in reach["by_town"]}
    assert towns[TANGXIA]["firms"] == 4
    assert towns[HUMEN] == {**towns[HUMEN], "firms": None, "suppressed": True}
    # Every firm here is small (45 staff, 18m yuan revenue in manufacturing).
    assert [(c["key"], c["firms"], c["suppressed"]) for c in reach["by_size_class"]] == [
        ("small", 6, False)
    ]
    [patents] = [c for c in reach["criteria"] if c["criterion"] == "min_patents"]
    assert (patents["setting"], patents["relaxed_to"]) == (5, 4)
    assert patents["binding"] is True
    assert patents["additional_firms"] is None  # one more firm (4 patents): withheld
    assert patents["suppressed"] is True
    assert reach["is_prior"] is True
    assert reach["expected_approval_share"] is None  # no model yet
    assert reach["expected_approval_share_margin"] is None
    assert reach["expected_approval_share_scored"] is None
    assert "firm_id" not in answer.text
    assert bank.get("/v1/products").json()["data"] == []  # nothing saved

    looser = bank.post("/v1/products/preview", json=data.product(min_patents=8))
    [patents] = [c for c in looser.json()["criteria"] if c["criterion"] == "min_patents"]
    assert (patents["relaxed_to"], patents["additional_firms"]) == (7, None)
    local = bank.post("/v1/products/preview", json=draft, params={"town_code": TANGXIA})
    assert local.json()["firms_considered"] == 9


def test_a_listed_products_reach_is_its_institutions_only(stack: Stack) -> None:
    populate(stack)
    bank = stack.institution("东莞测试银行")
    rival = stack.institution("另一家银行")
    product = bank.post("/v1/products", json=data.product(min_patents=3)).json()
    answer = bank.get(f"/v1/products/{product['id']}/reach")
    assert answer.status_code == 200, answer.text
    assert answer.json()["product_id"] == product["id"]
    assert answer.json()["eligible"] == 8  # patents 3..8 in Tangxia, both Humen firms
    [patents] = [c for c in answer.json()["criteria"] if c["criterion"] == "min_patents"]
    assert (patents["relaxed_to"], patents["binding"]) == (2, True)
    assert rival.get(f"/v1/products/{product['id']}/reach").status_code == 404
    assert stack.principal("portal").get(f"/v1/products/{product['id']}/reach").status_code == 404
    assert stack.admin.get(f"/v1/products/{product['id']}/reach").status_code == 200
    assert bank.get("/v1/products/999999/reach").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_min_yuan": -1}, "amount_min_yuan"),
        ({"min_patents": "many"}, "min_patents"),
        ({"elig_town_codes": ["999"]}, "elig_town_codes"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_draft_is_422_naming_the_field(
    stack: Stack, change: dict[str, Any], field: str
) -> None:
    bank = stack.institution("东莞测试银行")
    answer = bank.post("/v1/products/preview", json=data.product() | change)
    assert answer.status_code == 422
    assert field in {e["field"] for e in answer.json()["errors"]}


def test_only_institutions_preview_and_an_unknown_town_is_404(stack: Stack) -> None:
    bank = stack.institution("东莞测试银行")
    portal = stack.principal("portal")
    assert portal.post("/v1/products/preview", json=data.product()).status_code == 404
    unknown = bank.post("/v1/products/preview", json=data.product(), params={"town_code": "1"})
    assert unknown.status_code == 404


def test_every_firm_write_counts_in_the_next_preview(stack: Stack) -> None:
    """The matching service keeps the firms and reads what changed before each answer: a
    firm that grows into the rule, one erased and one registered count at once."""
    portal = populate(stack)
    bank = stack.institution("东莞测试银行")
    draft = data.product(min_patents=5, elig_size_classes=[])
    assert bank.post("/v1/products/preview", json=draft).json()["eligible"] == 6
    firms = portal.get("/v1/firms", params={"limit": 100}).json()["data"]
    reachable = [f for f in firms if f["consent_matching"] and f["need_amount_yuan"]]
    by_patents = {f["utility_patents"]: f for f in reachable if f["town_code"] == TANGXIA}
    grown = by_patents[4]
    patched = portal.patch(
        f"/v1/firms/{grown['id']}",
        json={"utility_patents": 5},
        headers={"If-Match": f'"{grown["version"]}"'},
    )
    assert patched.status_code == 200, patched.text
    assert portal.delete(f"/v1/firms/{by_patents[8]['id']}").status_code == 204
    new = data.firm(200, town_code=HUMEN, utility_patents=6, invention_patents=0)
    assert portal.post("/v1/firms", json=new).status_code == 201
    after = bank.post("/v1/products/preview", json=draft).json()
    assert after["firms_considered"] == 11  # one erased, one registered
    assert after["eligible"] == 7  # 6 + the grown one + the new one − the erased one
    towns = {c["key"]: c["firms"] for c in after["by_town"]}
    assert towns == {TANGXIA: 4, HUMEN: 3}
