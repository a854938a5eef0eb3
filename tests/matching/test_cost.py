"""Offer size, rate and annual cost of (firm, product) pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from services.matching.cost import USD_CNY, cost_estimate, estimate_costs
from shared.schemas.matching import CostEstimate
from shared.schemas.product import ProductFeatures
from tests.matching.helpers import (
    export_finance,
    firm,
    gov_procurement,
    guanmaotong,
    guaranteed,
    ip_pledge,
    one_pair,
    product,
    tables,
)


def test_ip_pledge_worked_example() -> None:
    # BBB sits half-way up the 3.60–4.80% range: 4.20%.
    pair = one_pair(firm(credit_rating="BBB"), ip_pledge(), amount=2_000_000, term=24)
    c = pair.costs
    assert c.offer_amount[0] == 2_000_000
    assert c.rate_bp[0] == 420
    assert c.annual_interest[0] == 84_000
    assert c.annual_subsidy[0] == 58_800
    assert c.annual_fee[0] == 0
    assert c.annual_cost[0] == 25_200
    assert c.effective_rate_bp[0] == 126
    assert cost_estimate(c, 0) == CostEstimate(
        amount_yuan=2_000_000,
        term_months=24,
        rate_bp=420,
        annual_interest_yuan=84_000,
        annual_subsidy_yuan=58_800,
        annual_guarantee_fee_yuan=0,
        annual_cost_yuan=25_200,
        effective_rate_bp=126,
    )


def test_subsidy_cap_binds() -> None:
    pair = one_pair(firm(), ip_pledge(interest_subsidy_cap_yuan=50_000), amount=2_000_000)
    assert pair.costs.annual_subsidy[0] == 50_000
    assert pair.costs.annual_cost[0] == 34_000
    assert pair.costs.effective_rate_bp[0] == 170


def test_subsidy_cap_of_zero_means_no_cap() -> None:
    pair = one_pair(firm(), ip_pledge(interest_subsidy_cap_yuan=0), amount=2_000_000)
    assert pair.costs.annual_subsidy[0] == 58_800


def test_guarantee_fee_is_added() -> None:
    # 3.80–5.20% at BBB is 4.50%; the fee is 0.80% of the amount lent.
    pair = one_pair(firm(), guaranteed(), amount=1_000_000)
    assert cost_estimate(pair.costs, 0) == CostEstimate(
        amount_yuan=1_000_000,
        term_months=12,
        rate_bp=450,
        annual_interest_yuan=45_000,
        annual_subsidy_yuan=0,
        annual_guarantee_fee_yuan=8_000,
        annual_cost_yuan=53_000,
        effective_rate_bp=530,
    )


@pytest.mark.parametrize(
    ("firm_overrides", "the_product", "requested", "offer"),
    [
        pytest.param(
            {"gov_procurement_contracts_yuan": 8_500_000},
            gov_procurement(),
            10_000_000,
            8_500_000,
            id="procurement-100pct",
        ),
        pytest.param(
            {"core_enterprise_receivables_yuan": 6_000_000},
            product(amount_cap_basis="receivables", amount_cap_pct=90),
            10_000_000,
            5_400_000,
            id="receivables-90pct",
        ),
        pytest.param(
            {"export_revenue_usd": 1_000_000},
            export_finance(amount_max_yuan=20_000_000),
            10_000_000,
            0.8 * 1_000_000 * USD_CNY,
            id="exports-80pct",
        ),
        pytest.param(
            {"collateral_real_estate_yuan": 5_000_000, "collateral_equipment_yuan": 2_000_000},
            product(
                collateral_kind="real_estate", amount_cap_basis="collateral", amount_cap_pct=70
            ),
            10_000_000,
            3_500_000,
            id="real-estate-70pct",
        ),
        pytest.param(
            {"collateral_real_estate_yuan": 5_000_000, "collateral_equipment_yuan": 2_000_000},
            product(collateral_kind="equipment", amount_cap_basis="collateral", amount_cap_pct=80),
            10_000_000,
            1_600_000,
            id="equipment-80pct",
        ),
        pytest.param(
            {"collateral_real_estate_yuan": 5_000_000, "collateral_equipment_yuan": 2_000_000},
            product(collateral_kind="guarantee", amount_cap_basis="collateral", amount_cap_pct=60),
            10_000_000,
            4_200_000,
            id="other-kind-takes-both-60pct",
        ),
        pytest.param(
            {},
            product(category="first_loan", amount_cap_basis="annual_revenue", amount_cap_pct=30),
            10_000_000,
            5_400_000,
            id="revenue-30pct",
        ),
        pytest.param({}, product(), 20_000_000, 10_000_000, id="no-cap-amount-max"),
        pytest.param(
            {"gov_procurement_contracts_yuan": 8_500_000},
            gov_procurement(),
            3_000_000,
            3_000_000,
            id="request-below-cap",
        ),
    ],
)
def test_offer_is_capped_by_basis(
    firm_overrides: dict[str, Any], the_product: ProductFeatures, requested: float, offer: float
) -> None:
    pair = one_pair(firm(**firm_overrides), the_product, amount=requested)
    assert pair.costs.offer_amount[0] == pytest.approx(offer, abs=1e-6)
    assert pair.costs.coverage[0] == pytest.approx(offer / requested, abs=1e-12)


def test_export_cap_converts_dollars_at_the_documented_rate() -> None:
    pair = one_pair(firm(export_revenue_usd=1_000_000), export_finance(), amount=10_000_000)
    assert USD_CNY == 7.1
    assert cost_estimate(pair.costs, 0).amount_yuan == 5_680_000


def test_product_cannot_lend_below_its_minimum() -> None:
    # A 30万 contract cannot carry a loan whose minimum is 100万.
    the_product = gov_procurement(amount_min_yuan=1_000_000)
    pair = one_pair(firm(gov_procurement_contracts_yuan=300_000), the_product, amount=2_000_000)
    c = pair.costs
    assert c.offer_amount[0] == 0
    assert c.coverage[0] == 0
    for column in (c.annual_interest, c.annual_subsidy, c.annual_fee, c.annual_cost):
        assert column[0] == 0
    assert c.effective_rate_bp[0] == 0
    assert c.rate_bp[0] == 390  # the price is still known, only the amount is missing


def test_offer_exactly_at_minimum_can_lend() -> None:
    the_product = gov_procurement(amount_min_yuan=1_000_000)
    pair = one_pair(firm(gov_procurement_contracts_yuan=1_000_000), the_product, amount=2_000_000)
    assert pair.costs.offer_amount[0] == 1_000_000
    assert pair.costs.coverage[0] == 0.5


@pytest.mark.parametrize(
    ("rating", "rate_bp"),
    [
        ("AAA", 300),
        ("AA", 350),
        ("A", 400),
        ("BBB", 450),
        ("BB", 500),
        ("B", 550),
        ("C", 600),
        (None, 480),  # unrated: 60% of the way up
    ],
)
def test_rate_follows_rating(rating: str | None, rate_bp: float) -> None:
    pair = one_pair(firm(credit_rating=rating), product(rate_min_bp=300, rate_max_bp=600))
    assert pair.costs.rate_bp[0] == pytest.approx(rate_bp, abs=1e-9)


@pytest.mark.parametrize(("requested", "term"), [(3, 12), (24, 24), (60, 36)])
def test_term_is_clipped_into_the_product_range(requested: float, term: float) -> None:
    pair = one_pair(firm(), ip_pledge(), term=requested)
    assert pair.costs.term_months[0] == term


def test_estimate_rounds_to_whole_yuan() -> None:
    # Unrated pays 3.60 + 0.6 × 1.20 = 4.32%: 1,234,567 × 4.32% = 53,333.29.
    pair = one_pair(firm(credit_rating=None), product(), amount=1_234_567)
    estimate = cost_estimate(pair.costs, 0)
    assert estimate.rate_bp == 432
    assert estimate.annual_interest_yuan == 53_333
    assert estimate.annual_cost_yuan == 53_333
    assert estimate.effective_rate_bp == 432


def test_pairs_are_independent_in_one_call() -> None:
    """Every firm × product pair in one call equals the pair computed alone."""
    firms_list = [
        firm(credit_rating="AA", gov_procurement_contracts_yuan=8_500_000),
        firm(credit_rating=None, export_revenue_usd=12_400_000, size_class="medium"),
        firm(credit_rating="B", collateral_real_estate_yuan=3_000_000),
    ]
    products_list = [ip_pledge(), guanmaotong(), gov_procurement(), export_finance(), guaranteed()]
    firm_table, product_table = tables(firms_list, products_list)
    f = np.repeat(np.arange(3, dtype=np.int64), 5)
    p = np.tile(np.arange(5, dtype=np.int64), 3)
    amounts = np.linspace(500_000, 9_000_000, 15)
    terms = np.linspace(1, 60, 15)
    together = estimate_costs(firm_table, f, product_table, p, amounts, terms)
    for k in range(15):
        alone = one_pair(firms_list[f[k]], products_list[p[k]], amounts[k], terms[k]).costs
        assert cost_estimate(together, k) == cost_estimate(alone, 0)
        assert together.coverage[k] == alone.coverage[0]
