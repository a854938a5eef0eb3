"""Names and free text never hold invisible formatting characters (bidi overrides and kin)."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import Stack
from tests.registry import data

INVISIBLE = ["\u202e", "\u202a", "\u2066", "\u2069", "\u200b", "\ufeff", "\u00ad"]


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("field", ["name", "need_purpose"])
def test_a_firm_text_with_an_invisible_character_is_422_naming_the_field(
    stack: Stack, field: str, char: str
) -> None:
    portal = stack.principal("portal")
    refused = portal.post("/v1/firms", json=data.firm() | {field: f"东莞{char}科技"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == field
    assert f"U+{ord(char):04X}" in refused.json()["errors"][0]["message"]
    assert portal.get("/v1/firms").json()["data"] == []


def test_product_and_decision_texts_are_checked_too(stack: Stack) -> None:
    bank = stack.institution("东莞测试银行")
    product = bank.post("/v1/products", json=data.product(description="低息\u202e贷款"))
    assert product.status_code == 422, product.text
    assert product.json()["errors"][0]["field"] == "description"


def test_ordinary_chinese_and_accented_text_is_kept(stack: Stack) -> None:
    portal = stack.principal("portal")
    name = "东莞市松山湖Café科技有限公司"
    created = portal.post("/v1/firms", json=data.firm() | {"name": name})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name
