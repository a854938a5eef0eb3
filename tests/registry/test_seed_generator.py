"""The synthetic Dongguan world: a valid catalogue, a believable population and history."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.registry.seed.approval_model import (
    APPETITE,
    INSTITUTION_BIAS,
    true_approval_probability,
)
from services.registry.seed.catalogue import SONGSHANHU, WATER_TOWNS, institutions, products
from services.registry.seed.eligibility import eligibility_matrix, hard_rule_violations
from services.registry.seed.history import generate_history
from services.registry.seed.population import generate_firms
from shared.enums import AmountCapBasis, CollateralKind, RejectionReason
from shared.schemas.access import InstitutionCreate
from shared.schemas.application import DecisionCreate
from shared.schemas.firm import FirmCreate
from shared.schemas.product import ProductCreate
from shared.vocab.categories import ProductCategory
from shared.vocab.size_class import classify_size
from shared.vocab.towns import census_weights

N_FIRMS = 20_000
START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)


def size_of(firm: dict[str, Any]) -> str:
    return classify_size(
        firm["industry_section"],
        firm["industry_division"],
        employees=firm["employees"],
        revenue_yuan=firm["annual_revenue_yuan"],
        total_assets_yuan=firm["total_assets_yuan"],
    ).value


def share(firms: list[dict[str, Any]], test: Any) -> float:
    return sum(1 for firm in firms if test(firm)) / len(firms)


@pytest.fixture(scope="module")
def firms() -> list[dict[str, Any]]:
    return list(generate_firms(N_FIRMS))


@pytest.fixture(scope="module")
def history(firms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(generate_history(firms, products(), 20_000, 7, START, END))


# --- catalogue -----------------------------------------------------------------------------


def test_catalogue_validates_and_covers_every_category() -> None:
    insts, prods = institutions(), products()
    for inst in insts:
        InstitutionCreate.model_validate(inst)
    assert 14 <= len(insts) <= 20
    assert 40 <= len(prods) <= 60
    seen = Counter()
    for inst_index, spec in prods:
        assert 0 <= inst_index < len(insts)
        product = ProductCreate.model_validate(spec)
        seen[product.category] += 1
        assert product.guarantee_fee_bp <= 100, product.name
    assert set(seen) == set(ProductCategory)
    # Every name the hidden model knows a bias for is a catalogue institution, and vice versa.
    assert {i["name"] for i in insts} == set(INSTITUTION_BIAS)
    assert set(APPETITE) == set(ProductCategory)


def test_catalogue_follows_the_action_plan() -> None:
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for _, spec in products():
        by_cat.setdefault(spec["category"], []).append(spec)
    for spec in by_cat[ProductCategory.GUANMAOTONG]:  # item 72
        assert sorted(spec["elig_size_classes"]) == ["large", "medium"]
        assert spec["min_export_usd"] == 10_000_000
        assert spec["amount_cap_basis"] == AmountCapBasis.EXPORT_REVENUE
    restricted = [
        s for s in by_cat[ProductCategory.CREDIT_INSURANCE_GUARANTEE] if s.get("elig_size_classes")
    ]
    assert restricted  # item 75: small and micro exporters
    assert all(sorted(s["elig_size_classes"]) == ["micro", "small"] for s in restricted)
    assert any(
        s["amount_cap_basis"] == AmountCapBasis.EXPORT_REVENUE and s["amount_cap_pct"] == 80
        for s in by_cat[ProductCategory.CREDIT_INSURANCE_GUARANTEE]
    )
    for spec in by_cat[ProductCategory.GOV_PROCUREMENT]:
        assert spec["requires_gov_procurement"]
        assert spec["amount_cap_basis"] == AmountCapBasis.GOV_PROCUREMENT_CONTRACTS
        assert spec["collateral_kind"] != CollateralKind.REAL_ESTATE
    assert max(s["amount_cap_pct"] for s in by_cat[ProductCategory.GOV_PROCUREMENT]) == 100
    for spec in by_cat[ProductCategory.IP_PLEDGE]:
        assert spec["min_patents"] >= 1
        assert (spec["interest_subsidy_pct"], spec["interest_subsidy_cap_yuan"]) == (70, 1_000_000)
    assert all(s["requires_first_loan"] for s in by_cat[ProductCategory.FIRST_LOAN])
    assert all(s["requires_green"] for s in by_cat[ProductCategory.GREEN])
    for cat in (ProductCategory.RECEIVABLES, ProductCategory.SUPPLY_CHAIN):
        assert all(s["requires_receivables"] for s in by_cat[cat])
        assert all(s["amount_cap_basis"] == AmountCapBasis.RECEIVABLES for s in by_cat[cat])
    assert all(
        s["collateral_kind"] == CollateralKind.EQUIPMENT for s in by_cat[ProductCategory.LEASING]
    )
    towns = [set(s.get("elig_town_codes", [])) for _, s in products()]
    assert any(t == {SONGSHANHU} for t in towns)
    assert any(t == set(WATER_TOWNS) for t in towns)


def test_products_returns_fresh_copies() -> None:
    first = products()
    restricted = next(s for _, s in first if s.get("elig_town_codes"))
    restricted["elig_town_codes"].clear()
    assert all(s["elig_town_codes"] for _, s in products() if "elig_town_codes" in s)


# --- population ----------------------------------------------------------------------------


def test_firms_are_deterministic_and_prefix_stable(firms: list[dict[str, Any]]) -> None:
    assert list(generate_firms(300)) == firms[:300]
    assert list(generate_firms(12_345))[-5:] == firms[12_340:12_345]  # across a chunk edge
    other = list(generate_firms(300, seed=1))
    assert [f["annual_revenue_yuan"] for f in other] != [
        f["annual_revenue_yuan"] for f in firms[:300]
    ]
    assert len({f["credit_code"] for f in firms}) == len(firms)


def test_every_firm_validates(firms: list[dict[str, Any]]) -> None:
    for firm in firms:
        model = FirmCreate.model_validate(firm)
        assert model.credit_code == firm["credit_code"]
        assert "合成" not in firm["name"]
        assert firm["name"].startswith("东莞市")
        assert firm["name"].endswith("有限公司")
        assert date(1995, 1, 1) <= firm["established_on"] <= date(2025, 12, 31)


def test_size_and_trait_shares(firms: list[dict[str, Any]]) -> None:
    sizes = Counter(size_of(f) for f in firms)
    assert (sizes["small"] + sizes["micro"]) / len(firms) >= 0.95
    assert sizes["medium"] > 0
    assert 0.04 <= share(firms, lambda f: f["export_revenue_usd"] > 0) <= 0.06
    assert 0.015 <= share(firms, lambda f: f["is_high_tech"]) <= 0.025
    assert 0.006 <= share(firms, lambda f: f["is_specialized_sme"]) <= 0.014
    assert 0.02 <= share(firms, lambda f: f["gov_procurement_contracts_yuan"] > 0) <= 0.04
    assert 0.06 <= share(firms, lambda f: f["core_enterprise_receivables_yuan"] > 0) <= 0.10
    assert 0.02 <= share(firms, lambda f: f["is_green_listed"]) <= 0.04
    assert 0.30 <= share(firms, lambda f: not f["has_borrowed_before"]) <= 0.40
    assert 0.35 <= share(firms, lambda f: f["credit_rating"] is not None) <= 0.45
    assert 0.55 <= share(firms, lambda f: f["need_amount_yuan"] is not None) <= 0.65
    assert 0.30 <= share(firms, lambda f: f["industry_section"] == "C") <= 0.50


def test_big_exporters_are_few_and_mostly_medium(firms: list[dict[str, Any]]) -> None:
    big = [f for f in firms if f["export_revenue_usd"] > 10_000_000]
    assert 0 < len(big) < 0.005 * len(firms)
    assert sum(size_of(f) in ("medium", "large") for f in big) > len(big) / 2


def test_patents_are_mostly_zero_and_high_tech_has_more(firms: list[dict[str, Any]]) -> None:
    def patents(f: dict[str, Any]) -> int:
        return int(f["invention_patents"] + f["utility_patents"])

    assert share(firms, lambda f: patents(f) == 0) > 0.8
    tech = [patents(f) for f in firms if f["is_high_tech"]]
    rest = [patents(f) for f in firms if not f["is_high_tech"]]
    assert statistics.mean(tech) > 5 * statistics.mean(rest)


def test_towns_follow_the_census(firms: list[dict[str, Any]]) -> None:
    weights = census_weights()
    total = sum(weights.values())
    counts = Counter(f["town_code"] for f in firms)
    for code in ("441900119", "441900121", "441900004", "441900102"):  # 长安, 虎门, 南城, 石龙
        expected = weights[code] / total
        sigma = (expected * (1 - expected) / len(firms)) ** 0.5
        assert abs(counts[code] / len(firms) - expected) < 4 * sigma


def test_needs_are_sensible(firms: list[dict[str, Any]]) -> None:
    needy = [f for f in firms if f["need_amount_yuan"] is not None]
    assert all(6 <= f["need_term_months"] <= 60 and f["need_purpose"] for f in needy)
    without = [f for f in firms if f["need_amount_yuan"] is None]
    assert all(f["need_term_months"] is None and f["need_purpose"] is None for f in without)
    ratio = statistics.median(
        f["need_amount_yuan"] / max(1, f["annual_revenue_yuan"]) for f in needy
    )
    assert 0.1 < ratio < 0.4  # a need proportional to revenue


# --- hidden approval model -----------------------------------------------------------------


def _firm(**changes: Any) -> dict[str, Any]:
    base = {
        "town_code": "441900119",
        "industry_section": "C",
        "industry_division": 39,
        "established_on": date(2012, 5, 1),
        "employees": 80,
        "annual_revenue_yuan": 30_000_000,
        "total_assets_yuan": 20_000_000,
        "export_revenue_usd": 0,
        "invention_patents": 3,
        "utility_patents": 10,
        "is_high_tech": True,
        "is_specialized_sme": False,
        "gov_procurement_contracts_yuan": 0,
        "core_enterprise_receivables_yuan": 0,
        "is_green_listed": False,
        "has_borrowed_before": True,
        "collateral_real_estate_yuan": 5_000_000,
        "collateral_equipment_yuan": 3_000_000,
        "credit_rating": "AA",
    }
    return {**base, **changes}


def _product(category: ProductCategory) -> dict[str, Any]:
    return next(
        s for _, s in products() if s["category"] == category and not s.get("elig_town_codes")
    )


def test_hidden_model_ranks_a_strong_firm_above_a_weak_one() -> None:
    as_of = date(2025, 6, 1)
    strong = _firm()
    weak = _firm(
        established_on=date(2024, 9, 1),
        employees=6,
        annual_revenue_yuan=900_000,
        total_assets_yuan=400_000,
        credit_rating="B",
        has_borrowed_before=False,
        collateral_real_estate_yuan=0,
    )
    product = _product(ProductCategory.GUARANTEED)
    amount = max(product["amount_min_yuan"], 500_000)
    p_strong = true_approval_probability(strong, product, amount, 12, "small", as_of=as_of)
    p_weak = true_approval_probability(weak, product, amount, 12, "micro", as_of=as_of)
    assert p_strong > 0.8
    assert p_weak < 0.3
    # Each feature on its own moves the probability the documented way.
    worse_rating = true_approval_probability(
        _firm(credit_rating="C"), product, amount, 12, "small", as_of=as_of
    )
    assert worse_rating < p_strong


def test_hidden_model_punishes_broken_rules() -> None:
    as_of = date(2025, 6, 1)
    product = _product(ProductCategory.GOV_PROCUREMENT)
    with_contract = _firm(gov_procurement_contracts_yuan=2_000_000)
    without = _firm()
    assert hard_rule_violations(without, product, "small", as_of) == ["requires_gov_procurement"]
    p_ok = true_approval_probability(with_contract, product, 1_000_000, 12, "small", as_of=as_of)
    p_bad = true_approval_probability(without, product, 1_000_000, 12, "small", as_of=as_of)
    assert p_ok > 0.7
    assert p_bad < 0.05
    guanmaotong = _product(ProductCategory.GUANMAOTONG)
    small_exporter = _firm(export_revenue_usd=12_000_000)
    assert "elig_size_classes" in hard_rule_violations(small_exporter, guanmaotong, "small", as_of)
    assert not hard_rule_violations(small_exporter, guanmaotong, "medium", as_of)


def test_eligibility_matrix_agrees_with_the_one_firm_check(firms: list[dict[str, Any]]) -> None:
    as_of = date(2025, 6, 1)
    sample = firms[:1500]
    sizes = [size_of(f) for f in sample]
    specs = [s for _, s in products()]
    matrix = eligibility_matrix(sample, specs, sizes, as_of)
    for i, j in itertools.product(range(len(sample)), range(len(specs))):
        assert matrix[i, j] == (not hard_rule_violations(sample[i], specs[j], sizes[i], as_of))
    assert matrix.any(axis=0).sum() >= 40  # nearly every product has someone eligible


# --- history -------------------------------------------------------------------------------


def test_history_is_reproducible(
    firms: list[dict[str, Any]], history: list[dict[str, Any]]
) -> None:
    again = list(generate_history(firms, products(), 20_000, 7, START, END))
    assert again == history
    other = list(generate_history(firms, products(), 500, 8, START, END))
    assert other != history[:500]


def test_history_shape(history: list[dict[str, Any]]) -> None:
    specs = products()
    assert len(history) == 20_000
    times = [h["submitted_at"] for h in history]
    assert times == sorted(times)
    assert all(t.tzinfo is not None and START <= t < END for t in times)
    middle = START + (END - START) / 2
    assert sum(t >= middle for t in times) > 1.5 * sum(t < middle for t in times)
    for h in history:
        spec = specs[h["product_index"]][1]
        assert spec["amount_min_yuan"] <= h["requested_amount_yuan"] <= spec["amount_max_yuan"]
        assert spec["term_min_months"] <= h["requested_term_months"] <= spec["term_max_months"]
        if h["outcome"] is None:
            assert h["decided_at"] is None
            assert h["rejection_reason"] is None
            continue
        DecisionCreate.model_validate({k: h[k] for k in DecisionCreate.model_fields if k in h})
        assert h["submitted_at"] < h["decided_at"] < END
        assert h["decided_at"] - h["submitted_at"] <= timedelta(days=29)
        if h["outcome"] == "approved":
            assert (
                spec["amount_min_yuan"] <= h["approved_amount_yuan"] <= h["requested_amount_yuan"]
            )
            assert spec["rate_min_bp"] <= h["rate_bp"] <= spec["rate_max_bp"]
        else:
            RejectionReason(h["rejection_reason"])


def test_history_rates_are_believable(
    firms: list[dict[str, Any]], history: list[dict[str, Any]]
) -> None:
    outcomes = Counter(h["outcome"] for h in history)
    decided = outcomes["approved"] + outcomes["rejected"]
    assert 0.40 <= outcomes["approved"] / decided <= 0.75
    assert 0.05 <= outcomes[None] / len(history) <= 0.11
    # Pending applications are mostly the most recent ones.
    recent = END - timedelta(days=90)
    pending = [h for h in history if h["outcome"] is None]
    assert sum(h["submitted_at"] >= recent for h in pending) > 0.75 * len(pending)
    reasons = Counter(h["rejection_reason"] for h in history if h["outcome"] == "rejected")
    assert len(reasons) >= 6
    assert reasons[RejectionReason.INELIGIBLE_PRODUCT] > 0


def test_history_mostly_applies_where_eligible(
    firms: list[dict[str, Any]], history: list[dict[str, Any]]
) -> None:
    specs = products()
    eligible_approved, ineligible = [], []
    for h in history:
        firm = firms[h["firm_index"]]
        broken = hard_rule_violations(
            firm, specs[h["product_index"]][1], size_of(firm), h["submitted_at"].date()
        )
        if broken:
            ineligible.append(h)
        elif h["outcome"] is not None:
            eligible_approved.append(h["outcome"] == "approved")
    assert 0.02 < len(ineligible) / len(history) < 0.25
    decided_bad = [h for h in ineligible if h["outcome"] is not None]
    assert sum(h["outcome"] == "approved" for h in decided_bad) / len(decided_bad) < 0.1
    assert statistics.mean(eligible_approved) > 0.55


def test_better_ratings_get_cheaper_loans(
    firms: list[dict[str, Any]], history: list[dict[str, Any]]
) -> None:
    specs = products()

    def position(h: dict[str, Any]) -> float:
        spec = specs[h["product_index"]][1]
        return (h["rate_bp"] - spec["rate_min_bp"]) / (spec["rate_max_bp"] - spec["rate_min_bp"])

    approved = [h for h in history if h["outcome"] == "approved"]
    good = [
        position(h) for h in approved if firms[h["firm_index"]]["credit_rating"] in ("AAA", "AA")
    ]
    bad = [position(h) for h in approved if firms[h["firm_index"]]["credit_rating"] in ("B", "C")]
    assert good
    assert bad
    assert statistics.mean(good) + 0.3 < statistics.mean(bad)
