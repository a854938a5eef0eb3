"""One notch easier: the next step of each kind of criterion, as the reach preview uses it."""

from __future__ import annotations

import pytest

from shared.criteria import CRITERIA, CRITERIA_BY_CODE, is_set, next_step
from shared.schemas.product import ProductFeatures


@pytest.mark.parametrize(
    ("code", "setting", "relaxed"),
    [
        ("min_revenue_yuan", 5_000_000, 2_000_000),
        ("min_revenue_yuan", 3_000_000, 2_000_000),
        ("min_revenue_yuan", 1_000_000, 500_000),
        ("min_revenue_yuan", 1, None),
        ("max_revenue_yuan", 400_000_000, 500_000_000),
        ("max_revenue_yuan", 500_000_000, 1_000_000_000),
        ("min_export_usd", 10_000_000, 5_000_000),
        ("min_employees", 50, 20),
        ("min_employees", 8, 7),
        ("min_patents", 1, None),
        ("min_years_established", 3, 2),
        ("max_years_established", 5, 6),
        ("min_credit_rating", "BBB", "BB"),
        ("min_credit_rating", "C", None),
        ("requires_high_tech", True, False),
        ("elig_town_codes", ["441900401"], []),
    ],
)
def test_next_step(code: str, setting: object, relaxed: object) -> None:
    assert next_step(CRITERIA_BY_CODE[code], setting) == relaxed


def test_every_criterions_example_relaxes_to_a_valid_easier_product() -> None:
    base = {
        "id": 1,
        "institution_id": 1,
        "category": "ip_pledge",
        "amount_min_yuan": 100_000,
        "amount_max_yuan": 1_000_000,
        "term_min_months": 6,
        "term_max_months": 12,
        "rate_min_bp": 300,
        "rate_max_bp": 400,
    }
    for criterion in CRITERIA:
        assert is_set(criterion, criterion.example)
        relaxed = next_step(criterion, criterion.example)
        assert relaxed != criterion.example
        ProductFeatures.model_validate(base | {criterion.code: relaxed})
    assert not is_set(CRITERIA_BY_CODE["elig_town_codes"], [])
    assert not is_set(CRITERIA_BY_CODE["requires_green"], False)
    assert not is_set(CRITERIA_BY_CODE["min_patents"], None)
