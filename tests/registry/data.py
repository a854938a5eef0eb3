"""Plain data helpers: valid firms and products to start tests from."""

from __future__ import annotations

from typing import Any

from shared.vocab.credit_code import make_dongguan_credit_code


def firm(seq: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "credit_code": make_dongguan_credit_code(seq),
        "name": f"东莞市测试{seq}电子有限公司",
        "town_code": "441900116",  # 塘厦镇
        "industry_section": "C",
        "industry_division": 39,
        "established_on": "2015-03-01",
        "employees": 45,
        "annual_revenue_yuan": 18_000_000,
        "total_assets_yuan": 12_000_000,
        "export_revenue_usd": 0,
        "invention_patents": 2,
        "utility_patents": 5,
        "need_amount_yuan": 2_000_000,
        "need_term_months": 12,
        "need_purpose": "采购原材料",
    }
    return body | overrides


def product(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "知识产权质押贷",
        "category": "ip_pledge",
        "description": "以专利权质押，贴息70%",
        "amount_min_yuan": 500_000,
        "amount_max_yuan": 10_000_000,
        "term_min_months": 6,
        "term_max_months": 36,
        "rate_min_bp": 350,
        "rate_max_bp": 480,
        "interest_subsidy_pct": 70,
        "interest_subsidy_cap_yuan": 1_000_000,
        "collateral_kind": "intellectual_property",
        "min_patents": 1,
        "elig_size_classes": ["small", "micro", "medium"],
    }
    return body | overrides


def application(firm_id: int, product_id: int, **overrides: Any) -> dict[str, Any]:
    """A valid application body (¥2,000,000 over 12 months, with consent)."""
    body: dict[str, Any] = {
        "firm_id": firm_id,
        "product_id": product_id,
        "requested_amount_yuan": 2_000_000,
        "requested_term_months": 12,
        "consent_share_profile": True,
    }
    return body | overrides


def register_line(kind: str, seq: int = 1, **overrides: Any) -> dict[str, Any]:
    """A valid line of a register upload for the firm data.firm(seq) describes."""
    code = make_dongguan_credit_code(seq)
    bodies: dict[str, dict[str, Any]] = {
        "high_tech": {"certificate_number": f"GR2024440{seq:05d}", "valid_from": "2024-12-01"},
        "specialized_sme": {"level": "provincial", "year": 2024},
        "green_list": {"list_date": "2024-06-30", "sector": "节能环保"},
        "gov_procurement_awards": {
            "contract_number": f"DGCG-2025-{seq:04d}",
            "value_yuan": 1_200_000,
            "award_date": "2025-03-01",
            "end_date": "2099-12-31",
        },
    }
    return {"credit_code": code, **bodies[kind]} | overrides
