"""Plain data helpers for matching tests: realistic Dongguan firms and products, and tables."""

from __future__ import annotations

from datetime import date
from typing import Any, NamedTuple

import numpy as np

from services.matching.cost import PairCosts, estimate_costs
from services.matching.eligibility import PairEligibility, evaluate_pairs
from services.matching.tables import FirmTable, ProductTable
from shared.schemas.firm import FirmFeatures
from shared.schemas.product import ProductFeatures

AS_OF = date(2025, 6, 30)
WAN = 10_000
TANGXIA = "441900116"  # 塘厦镇
SHILONG = "441900102"  # 石龙镇
SONGSHANHU = "441900401"  # 松山湖


def firm(**overrides: Any) -> FirmFeatures:
    """A small electronics maker in 塘厦镇: 120 staff, 1,800万 revenue, 7 patents, rated BBB."""
    body: dict[str, Any] = {
        "town_code": TANGXIA,
        "industry_section": "C",
        "industry_division": 39,
        "established_on": date(2015, 3, 1),
        "employees": 120,
        "annual_revenue_yuan": 18_000_000,
        "total_assets_yuan": 12_000_000,
        "invention_patents": 2,
        "utility_patents": 5,
        "credit_rating": "BBB",
        "size_class": "small",
        "need_amount_yuan": 2_000_000,
        "need_term_months": 12,
    }
    return FirmFeatures.model_validate(body | overrides)


def product(**overrides: Any) -> ProductFeatures:
    """An unrestricted working-capital loan: 10万–1,000万, 6–36 months, 3.60–4.80%."""
    body: dict[str, Any] = {
        "id": 1,
        "institution_id": 1,
        "category": "guaranteed",
        "name": "经营贷",
        "amount_min_yuan": 100_000,
        "amount_max_yuan": 10_000_000,
        "term_min_months": 6,
        "term_max_months": 36,
        "rate_min_bp": 360,
        "rate_max_bp": 480,
    }
    return ProductFeatures.model_validate(body | overrides)


def ip_pledge(**overrides: Any) -> ProductFeatures:
    """知识产权质押: the city subsidises 70% of interest, at most 100万 a year (§5.2)."""
    body: dict[str, Any] = {
        "id": 2,
        "category": "ip_pledge",
        "name": "知识产权质押贷",
        "amount_min_yuan": 500_000,
        "term_min_months": 12,
        "collateral_kind": "intellectual_property",
        "min_patents": 3,
        "min_years_established": 1,
        "elig_size_classes": ["micro", "small", "medium"],
        "elig_industry_sections": ["C"],
        "interest_subsidy_pct": 70,
        "interest_subsidy_cap_yuan": 1_000_000,
    }
    return product(**(body | overrides))


def guanmaotong(**overrides: Any) -> ProductFeatures:
    """莞贸通: medium and large exporters above US$10M; up to 80% of exports (item 72, §5.4)."""
    body: dict[str, Any] = {
        "id": 3,
        "category": "guanmaotong",
        "name": "莞贸通·保单融资",
        "amount_min_yuan": 2_000_000,
        "amount_max_yuan": 50_000_000,
        "term_min_months": 3,
        "term_max_months": 12,
        "rate_min_bp": 300,
        "rate_max_bp": 420,
        "collateral_kind": "insurance_policy",
        "amount_cap_basis": "export_revenue",
        "amount_cap_pct": 80,
        "elig_size_classes": ["medium", "large"],
        "min_export_usd": 10_000_000,
        "interest_subsidy_pct": 30,
        "interest_subsidy_cap_yuan": 2_000_000,
    }
    return product(**(body | overrides))


def gov_procurement(**overrides: Any) -> ProductFeatures:
    """政采贷: lends up to the procurement contract value, no property collateral (§5.1)."""
    body: dict[str, Any] = {
        "id": 4,
        "category": "gov_procurement",
        "name": "政采贷（线上）",
        "term_min_months": 3,
        "term_max_months": 12,
        "rate_min_bp": 330,
        "rate_max_bp": 450,
        "collateral_kind": "procurement_contract",
        "amount_cap_basis": "gov_procurement_contracts",
        "amount_cap_pct": 100,
        "requires_gov_procurement": True,
    }
    return product(**(body | overrides))


def export_finance(**overrides: Any) -> ProductFeatures:
    """出口信保融资: up to 80% of the invoice, here of annual exports (§5.4)."""
    body: dict[str, Any] = {
        "id": 5,
        "category": "credit_insurance_guarantee",
        "name": "出口信保融资",
        "amount_min_yuan": 200_000,
        "term_min_months": 1,
        "term_max_months": 6,
        "rate_min_bp": 330,
        "rate_max_bp": 470,
        "collateral_kind": "insurance_policy",
        "amount_cap_basis": "export_revenue",
        "amount_cap_pct": 80,
        "min_export_usd": 100_000,
    }
    return product(**(body | overrides))


def guaranteed(**overrides: Any) -> ProductFeatures:
    """政府性融资担保: small and micro firms, a guarantee fee of 0.8% a year (§5.4)."""
    body: dict[str, Any] = {
        "id": 6,
        "category": "guaranteed",
        "name": "科创担保贷",
        "amount_max_yuan": 5_000_000,
        "rate_min_bp": 380,
        "rate_max_bp": 520,
        "guarantee_fee_bp": 80,
        "collateral_kind": "guarantee",
        "elig_size_classes": ["micro", "small"],
    }
    return product(**(body | overrides))


def tables(
    firms: list[FirmFeatures], products: list[ProductFeatures], as_of: date = AS_OF
) -> tuple[FirmTable, ProductTable]:
    return FirmTable.from_firms(firms, as_of), ProductTable.from_products(products)


class Pair(NamedTuple):
    firms: FirmTable
    products: ProductTable
    elig: PairEligibility
    costs: PairCosts


def one_pair(
    the_firm: FirmFeatures,
    the_product: ProductFeatures,
    amount: float | None = None,
    term: float | None = None,
) -> Pair:
    """Eligibility and costs of one firm and one product (pair 0, firm 0, product 0)."""
    firms, products = tables([the_firm], [the_product])
    idx = np.zeros(1, dtype=np.int64)
    requested = np.array([amount or the_firm.need_amount_yuan or 1_000_000], dtype=np.float64)
    months = np.array([term or the_firm.need_term_months or 12], dtype=np.float64)
    return Pair(
        firms,
        products,
        evaluate_pairs(firms, idx, products, idx),
        estimate_costs(firms, idx, products, idx, requested, months),
    )
