"""Verification through the public API (issue 16, parts 3 and 4): a verified_only product
refuses a declared attribute with a near miss that names the register, and qualifies the firm
once the register lists it; the bank sees each attribute's provenance in the consenting firm's
answer and in the application.submitted event, and another bank sees nothing (404)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from services.registry.models import OutboxEvent
from tests.gateway.conftest import Stack
from tests.gateway.test_registers import replace, tail
from tests.registry import data


def test_verified_only_refuses_a_declaration_until_the_register_lists_the_firm(
    stack: Stack,
) -> None:
    city, portal = stack.principal("official"), stack.principal("portal")
    bank, other_bank = stack.institution("东莞认定银行"), stack.institution("东莞其他银行")
    body = data.product(
        name="高企认定贷", requires_high_tech=True, verified_only=["requires_high_tech"]
    )
    product = bank.post("/v1/products", json=body)
    assert product.status_code == 201, product.text
    product_id = product.json()["id"]
    bad = bank.post("/v1/products", json=data.product(verified_only=["requires_first_loan"]))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"].startswith("verified_only")
    firm = portal.post("/v1/firms", json=data.firm(1, is_high_tech=True)).json()

    # Declared only (no register yet): a near miss that says it must be verified.
    matches = portal.get(f"/v1/firms/{firm['id']}/matches").json()
    assert matches["ranked"] == []
    [miss] = matches["near_misses"]
    [unmet] = miss["unmet"]
    assert unmet["code"] == "requires_high_tech"
    assert "需经认定" in unmet["message"]
    assert "高新技术企业认定名单" in unmet["message"]
    english = portal.get(f"/v1/firms/{firm['id']}/matches", params={"lang": "en"}).json()
    message = english["near_misses"][0]["unmet"][0]["message"]
    assert "must be verified" in message.lower()
    assert "high-tech enterprise register" in message

    # Listed: verified, and the product qualifies.
    tail(replace(city, "high_tech", [data.register_line("high_tech", 1)], "h1"))
    matches = portal.get(f"/v1/firms/{firm['id']}/matches").json()
    assert [r["product_id"] for r in matches["ranked"]] == [product_id]
    applied = portal.post("/v1/applications", json=data.application(firm["id"], product_id))
    assert applied.status_code == 201, applied.text
    assert applied.json()["eligibility"]["status"] == "eligible"

    # The bank reads the consenting firm with each attribute's provenance; another bank cannot.
    seen = bank.get(f"/v1/firms/{firm['id']}")
    assert seen.status_code == 200, seen.text
    provenance = seen.json()["provenance"]
    assert provenance["is_high_tech"]["status"] == "verified"
    assert provenance["is_high_tech"]["source"]["kind"] == "high_tech"
    assert provenance["is_green_listed"]["status"] == "declared"
    assert other_bank.get(f"/v1/firms/{firm['id']}").status_code == 404
    with Session(stack.engine) as session:
        [event] = session.exec(
            select(OutboxEvent.data)
            .where(OutboxEvent.type == "application.submitted")
            .order_by(col(OutboxEvent.id))
        ).all()
    assert event["firm"]["provenance"]["is_high_tech"]["status"] == "verified"
    assert event["firm"]["provenance"]["is_high_tech"]["source"]["version"] == 1
