"""An approval lies within the product's terms as the firm applied: amount, term and rate."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.conftest import Api, Stack
from tests.registry import data

# The product (tests.registry.data.product): ¥500,000–10,000,000, 6–36 months, 350–480 bp.
WITHIN = {
    "outcome": "approved",
    "approved_amount_yuan": 2_000_000,
    "rate_bp": 400,
    "term_months": 12,
}


def _application(stack: Stack) -> tuple[Api, int]:
    bank = stack.institution("东莞测试银行")
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    portal = stack.principal("portal")
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    applied = portal.post(
        "/v1/applications",
        json=data.application(
            firm_id, product_id, requested_amount_yuan=5_000_000, requested_term_months=24
        ),
    )
    assert applied.status_code == 201, applied.text
    return bank, applied.json()["id"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"term_months": 100}, "term_months"),
        ({"term_months": 5}, "term_months"),  # one month short of the minimum
        ({"term_months": 37}, "term_months"),  # one month past the maximum
        ({"rate_bp": 349}, "rate_bp"),
        ({"rate_bp": 481}, "rate_bp"),
        ({"approved_amount_yuan": 499_999}, "approved_amount_yuan"),
    ],
)
def test_an_approval_outside_the_terms_is_422_naming_the_figure(
    stack: Stack, change: dict[str, Any], field: str
) -> None:
    bank, application_id = _application(stack)
    refused = bank.post(f"/v1/applications/{application_id}/decision", json=WITHIN | change)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == field
    assert "outside the product's terms" in refused.json()["detail"]
    # Nothing was decided: the application still takes its one decision.
    assert bank.get(f"/v1/applications/{application_id}").json()["status"] == "submitted"


@pytest.mark.parametrize(
    "change",
    [
        {"term_months": 6, "rate_bp": 350, "approved_amount_yuan": 500_000},  # every minimum
        {"term_months": 36, "rate_bp": 480, "approved_amount_yuan": 5_000_000},  # maxima
    ],
)
def test_an_approval_at_the_bounds_is_taken(stack: Stack, change: dict[str, Any]) -> None:
    bank, application_id = _application(stack)
    taken = bank.post(f"/v1/applications/{application_id}/decision", json=WITHIN | change)
    assert taken.status_code == 201, taken.text
