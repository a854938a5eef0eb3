"""Readable reasons: unmet rules with their gaps, met rules, cost and model factors, zh and en."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.matching.eligibility import CRITERIA, CRITERION_CODES
from services.matching.explain import (
    MODEL_GROUPS,
    cost_reason,
    format_usd,
    format_yuan,
    model_reason,
    rule_reasons,
    unmet_criteria,
)
from shared.schemas.matching import Lang, Reason, UnmetCriterion
from shared.schemas.product import ProductFeatures
from tests.matching.helpers import (
    AS_OF,
    SHILONG,
    SONGSHANHU,
    Pair,
    firm,
    gov_procurement,
    guanmaotong,
    guaranteed,
    ip_pledge,
    one_pair,
    product,
)


def unmet(pair: Pair, lang: Lang) -> list[UnmetCriterion]:
    return unmet_criteria(pair.elig, 0, pair.firms, 0, pair.products, 0, lang)


def met(pair: Pair, lang: Lang) -> list[Reason]:
    return rule_reasons(pair.elig, 0, pair.firms, 0, pair.products, 0, lang)


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "lang", "text"),
    [
        (20_000_000, "zh", "2,000万元"),
        (120_000_000, "zh", "1.2亿元"),
        (200_000_000, "zh", "2亿元"),
        (850_000, "zh", "85万元"),
        (85_000, "zh", "8.5万元"),
        (5_000, "zh", "5,000元"),
        (2_000_000, "en", "¥2.0M"),
        (120_000_000, "en", "¥120M"),
        (12_500_000, "en", "¥12.5M"),
        (850_000, "en", "¥850K"),
        (1_500_000_000, "en", "¥1.5B"),
        (500, "en", "¥500"),
    ],
)
def test_format_yuan(value: float, lang: Lang, text: str) -> None:
    assert format_yuan(value, lang) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (8_200_000, "US$8.2M"),
        (10_000_000, "US$10M"),
        (1_800_000, "US$1.8M"),
        (12_400_000, "US$12.4M"),
        (850_000, "US$850K"),
        (150_000_000, "US$150M"),
    ],
)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_format_usd(value: float, text: str, lang: Lang) -> None:
    assert format_usd(value, lang) == text


# --- unmet criteria ------------------------------------------------------------------------


def test_exporter_just_below_guanmaotong_threshold() -> None:
    pair = one_pair(firm(export_revenue_usd=8_200_000, size_class="medium"), guanmaotong())
    zh, en = unmet(pair, "zh"), unmet(pair, "en")
    assert [u.message for u in zh] == ["年出口额 US$8.2M，距要求 US$10M 差 US$1.8M"]
    assert [u.message for u in en] == [
        "Annual exports US$8.2M; the product requires US$10M (US$1.8M short)"
    ]
    assert zh[0] == UnmetCriterion(
        code="min_export_usd",
        message="年出口额 US$8.2M，距要求 US$10M 差 US$1.8M",
        required=10_000_000,
        actual=8_200_000,
        gap=1_800_000,
        actionable=True,
    )


# code → (firm overrides, product overrides, zh message, en message); each fails only `code`.
UNMET_CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str, str]] = {
    "elig_town_codes": (
        {},
        {"elig_town_codes": [SONGSHANHU, SHILONG]},
        "仅限 石龙镇、松山湖 的企业（本企业在 塘厦镇）",
        "Only for firms in Shilong or Songshanhu (this firm is in Tangxia)",
    ),
    "elig_industry_sections": (
        {"industry_section": "F", "industry_division": 51},
        {"elig_industry_sections": ["C"]},
        "仅限 制造业 企业（本企业属于 批发和零售业）",
        "Only for firms in Manufacturing (this firm: Wholesale and retail trade)",
    ),
    "elig_size_classes": (
        {},
        {"elig_size_classes": ["medium", "large"]},
        "仅面向 中型、大型 企业（本企业为 小型）",
        "Only for medium or large firms (this firm is small)",
    ),
    "min_years_established": (
        {"established_on": AS_OF - timedelta(days=845)},  # 2.31 years
        {"min_years_established": 3},
        "成立 2.3 年，要求满 3 年（还差 0.7 年）",
        "Established 2.3 years ago; the product requires 3 years (0.7 years short)",
    ),
    "max_years_established": (
        {"established_on": AS_OF - timedelta(days=2200)},  # 6.02 years: past 6, so "6.1"
        {"max_years_established": 5},
        "成立 6.1 年，超过该产品上限 5 年（超出 1.1 年）",
        "Established 6.1 years ago, over the product's limit of 5 years (1.1 years over)",
    ),
    "min_total_assets_yuan": (
        {},
        {"min_total_assets_yuan": 20_000_000},
        "资产总额 1,200万元，距要求 2,000万元 差 800万元",
        "Total assets ¥12.0M; the product requires ¥20.0M (¥8.0M short)",
    ),
    "min_invention_patents": (
        {},
        {"min_invention_patents": 3},
        "发明专利 2 件，距要求 3 件 差 1 件",
        "2 invention patents; the product requires 3 (1 short)",
    ),
    "min_trademarks": (
        {"trademarks": 2},
        {"min_trademarks": 4},
        "注册商标 2 件，距要求 4 件 差 2 件",
        "2 registered trademarks; the product requires 4 (2 short)",
    ),
    "min_revenue_yuan": (
        {},
        {"min_revenue_yuan": 20_000_000},
        "营业收入 1,800万元，距要求 2,000万元 差 200万元",
        "Annual revenue ¥18.0M; the product requires ¥20.0M (¥2.0M short)",
    ),
    "max_revenue_yuan": (
        {},
        {"max_revenue_yuan": 15_000_000},
        "营业收入 1,800万元 超过该产品上限 1,500万元（超出 300万元）",
        "Annual revenue ¥18.0M exceeds the product's ceiling of ¥15.0M (by ¥3.0M)",
    ),
    "min_employees": (
        {},
        {"min_employees": 150},
        "从业人员 120 人，距要求 150 人 差 30 人",
        "120 employees; the product requires 150 (30 short)",
    ),
    "min_export_usd": (
        {"export_revenue_usd": 8_200_000},
        {"min_export_usd": 10_000_000},
        "年出口额 US$8.2M，距要求 US$10M 差 US$1.8M",
        "Annual exports US$8.2M; the product requires US$10M (US$1.8M short)",
    ),
    "min_patents": (
        {},
        {"min_patents": 10},
        "发明及实用新型专利 7 件，距要求 10 件 差 3 件",
        "7 invention and utility patents; the product requires 10 (3 short)",
    ),
    "requires_high_tech": (
        {},
        {"requires_high_tech": True},
        "需为国家高新技术企业",
        "Requires national high-tech enterprise status",
    ),
    "requires_specialized_sme": (
        {},
        {"requires_specialized_sme": True},
        "需为专精特新企业",
        "Requires 专精特新 (specialised SME) status",
    ),
    "requires_gov_procurement": (
        {},
        {"requires_gov_procurement": True},
        "需持有政府采购合同",
        "Requires a government procurement contract",
    ),
    "requires_receivables": (
        {},
        {"requires_receivables": True},
        "需持有核心企业应收账款",
        "Requires receivables from a core enterprise",
    ),
    "requires_green": (
        {},
        {"requires_green": True},
        "需列入绿色企业名录",
        "Requires a listing as a green enterprise",
    ),
    "requires_first_loan": (
        {"has_borrowed_before": True},
        {"requires_first_loan": True},
        "仅限首次贷款的企业（首贷户），本企业已有贷款记录",
        "Only for first-time borrowers; this firm has borrowed before",
    ),
    "min_credit_rating": (
        {"credit_rating": "BB"},
        {"min_credit_rating": "A"},
        "信用评级 BB，要求 A 及以上（差 2 级）",
        "Credit rating BB; the product requires A or better (2 notches short)",
    ),
}


@pytest.mark.parametrize(("code", "actionable"), CRITERIA)
def test_every_criterion_explains_itself(code: str, actionable: bool) -> None:
    firm_overrides, product_overrides, zh, en = UNMET_CASES[code]
    pair = one_pair(firm(**firm_overrides), product(**product_overrides))
    expected: list[tuple[Lang, str]] = [("zh", zh), ("en", en)]
    for lang, message in expected:
        [entry] = unmet(pair, lang)
        assert (entry.code, entry.message, entry.actionable) == (code, message, actionable)


def test_cases_cover_every_criterion() -> None:
    assert set(UNMET_CASES) == set(CRITERION_CODES)


def test_unmet_fields_for_lists_and_ratings() -> None:
    pair = one_pair(
        firm(credit_rating="BB"),
        product(elig_size_classes=["medium", "large"], min_credit_rating="A"),
    )
    size, rating = unmet(pair, "zh")
    assert (size.required, size.actual, size.gap) == (["medium", "large"], "small", None)
    assert (rating.required, rating.actual, rating.gap) == ("A", "BB", 2)


def test_unrated_firm_is_told_it_needs_a_rating() -> None:
    pair = one_pair(firm(credit_rating=None), product(min_credit_rating="A"))
    [zh], [en] = unmet(pair, "zh"), unmet(pair, "en")
    assert zh.message == "无信用评级，要求 A 及以上"
    assert en.message == "No credit rating; the product requires A or better"
    assert (zh.required, zh.actual, zh.gap) == ("A", None, None)


def test_long_town_lists_are_shortened() -> None:
    towns = [f"44190010{n}" for n in range(1, 8)]  # 石碣 … 桥头, seven towns
    pair = one_pair(firm(), product(elig_town_codes=towns))
    assert unmet(pair, "zh")[0].message == (
        "仅限 石碣镇、石龙镇、茶山镇、石排镇、企石镇等 7 个镇街 的企业（本企业在 塘厦镇）"
    )
    assert unmet(pair, "en")[0].message == (
        "Only for firms in Shijie, Shilong, Chashan, Shipai, Qishi and 2 other towns "
        "(this firm is in Tangxia)"
    )
    assert unmet(pair, "zh")[0].required == towns


def test_several_failures_come_in_criteria_order() -> None:
    pair = one_pair(firm(export_revenue_usd=8_200_000), guanmaotong())
    assert [u.code for u in unmet(pair, "zh")] == ["elig_size_classes", "min_export_usd"]
    assert [u.actionable for u in unmet(pair, "zh")] == [False, True]


def test_eligible_pair_has_no_unmet_criteria() -> None:
    assert unmet(one_pair(firm(), ip_pledge()), "zh") == []


# --- rules met -----------------------------------------------------------------------------


def test_rule_reasons_for_an_ip_pledge_firm() -> None:
    pair = one_pair(firm(), ip_pledge())
    assert [(r.code, r.message, r.source) for r in met(pair, "zh")] == [
        ("min_patents", "拥有发明及实用新型专利 7 件 ≥ 要求 3 件 → 符合知识产权质押条件", "rule"),
        ("min_years_established", "成立 10.3 年 ≥ 要求 1 年", "rule"),
        ("elig_size_classes", "企业规模为 小型，属于产品面向的企业", "rule"),
        ("elig_industry_sections", "所属行业 制造业 在产品支持范围内", "rule"),
    ]
    assert [r.message for r in met(pair, "en")] == [
        "Holds 7 invention and utility patents ≥ 3 required → meets the "
        "Intellectual-property pledge loan conditions",
        "Established 10.3 years ago ≥ 1 year required",
        "A small firm, as the product requires",
        "Sector Manufacturing is among those the product serves",
    ]


@pytest.mark.parametrize(
    ("firm_overrides", "the_product", "zh", "en"),
    [
        pytest.param(
            {"export_revenue_usd": 12_400_000, "size_class": "medium"},
            guanmaotong(),
            ["出口额 US$12.4M ≥ 莞贸通门槛 US$10M", "企业规模为 中型，属于产品面向的企业"],
            [
                "Exports US$12.4M ≥ the Guanmaotong export trade finance threshold of US$10M",
                "A medium firm, as the product requires",
            ],
            id="guanmaotong",
        ),
        pytest.param(
            {"gov_procurement_contracts_yuan": 8_500_000},
            gov_procurement(),
            ["持有政府采购合同 850万元"],
            ["Holds government procurement contracts of ¥8.5M"],
            id="procurement",
        ),
        pytest.param(
            {"has_borrowed_before": False},
            product(category="first_loan", requires_first_loan=True),
            ["首次贷款（首贷户），符合首贷产品条件"],
            ["First-time borrower → meets the First bank loan conditions"],
            id="first-loan",
        ),
        pytest.param(
            {"is_high_tech": True, "employees": 120, "annual_revenue_yuan": 18_000_000},
            product(
                requires_high_tech=True,
                min_credit_rating="BB",
                min_employees=100,
                min_revenue_yuan=10_000_000,
                max_revenue_yuan=400_000_000,
            ),
            [
                "营业收入 1,800万元 ≥ 要求 1,000万元",
                "营业收入 1,800万元 未超过上限 4亿元",
                "从业人员 120 人 ≥ 要求 100 人",
                "信用评级 BBB，满足 BB 及以上要求",
                "国家高新技术企业",
            ],
            [
                "Annual revenue ¥18.0M ≥ ¥10.0M required",
                "Annual revenue ¥18.0M within the ceiling of ¥400M",
                "120 employees ≥ 100 required",
                "Credit rating BBB meets the BB-or-better requirement",
                "National high-tech enterprise",
            ],
            id="thresholds-before-flags",
        ),
    ],
)
def test_rule_reasons_quote_the_firm(
    firm_overrides: dict[str, Any], the_product: ProductFeatures, zh: list[str], en: list[str]
) -> None:
    pair = one_pair(firm(**firm_overrides), the_product)
    assert [r.message for r in met(pair, "zh")] == zh
    assert [r.message for r in met(pair, "en")] == en


def test_rule_reasons_leave_out_failed_rules() -> None:
    the_product = product(
        requires_high_tech=True, min_credit_rating="BB", elig_town_codes=[SHILONG]
    )
    pair = one_pair(firm(is_high_tech=True), the_product)
    assert [r.code for r in met(pair, "zh")] == ["min_credit_rating", "requires_high_tech"]


def test_unrestricted_product_has_no_rule_reasons() -> None:
    assert met(one_pair(firm(), product()), "zh") == []


# --- cost ----------------------------------------------------------------------------------


def test_cost_reason_ip_pledge() -> None:
    pair = one_pair(firm(), ip_pledge(), amount=2_000_000)
    zh = cost_reason(pair.costs, 0, pair.products, 0, "zh")
    en = cost_reason(pair.costs, 0, pair.products, 0, "en")
    assert zh == Reason(
        code="cost",
        message="贴息后年化成本约 1.26%（利率 4.20%，贴息 70%，上限 100万元/年）",
        source="cost",
    )
    assert en.message == (
        "Annual cost after subsidy about 1.26% "
        "(rate 4.20%, 70% interest subsidy capped at ¥1.0M/yr)"
    )


def test_cost_reason_with_guarantee_fee() -> None:
    pair = one_pair(firm(), guaranteed(), amount=1_000_000)
    assert cost_reason(pair.costs, 0, pair.products, 0, "zh").message == (
        "年化成本约 5.30%（利率 4.50%，担保费 0.80%）"
    )
    assert cost_reason(pair.costs, 0, pair.products, 0, "en").message == (
        "Annual cost about 5.30% (rate 4.50%, guarantee fee 0.80%)"
    )


def test_cost_reason_uncapped_subsidy_and_fee() -> None:
    the_product = ip_pledge(interest_subsidy_cap_yuan=0, guarantee_fee_bp=50)
    pair = one_pair(firm(), the_product, amount=2_000_000)
    assert cost_reason(pair.costs, 0, pair.products, 0, "zh").message == (
        "贴息后年化成本约 1.76%（利率 4.20%，贴息 70%，担保费 0.50%）"
    )
    assert cost_reason(pair.costs, 0, pair.products, 0, "en").message == (
        "Annual cost after subsidy about 1.76% (rate 4.20%, 70% interest subsidy, "
        "guarantee fee 0.50%)"
    )


def test_cost_reason_partial_coverage() -> None:
    the_firm = firm(gov_procurement_contracts_yuan=8_500_000)
    pair = one_pair(the_firm, gov_procurement(), amount=10_000_000)
    assert cost_reason(pair.costs, 0, pair.products, 0, "zh").message == (
        "年化成本约 3.90%（利率 3.90%）；可贷 850万元，为申请金额的 85%"
    )
    assert cost_reason(pair.costs, 0, pair.products, 0, "en").message == (
        "Annual cost about 3.90% (rate 3.90%); lends ¥8.5M, 85% of the amount requested"
    )


def test_cost_reason_when_the_product_cannot_lend() -> None:
    the_firm = firm(gov_procurement_contracts_yuan=300_000)
    pair = one_pair(the_firm, gov_procurement(amount_min_yuan=1_000_000), amount=2_000_000)
    assert cost_reason(pair.costs, 0, pair.products, 0, "zh").message == (
        "按本企业条件可贷金额低于该产品起贷金额 100万元，无法放款"
    )
    assert cost_reason(pair.costs, 0, pair.products, 0, "en").message == (
        "What this product could lend this firm is below its minimum of ¥1.0M"
    )


# --- model factors -------------------------------------------------------------------------

MODEL_FIRM: dict[str, Any] = {
    "collateral_real_estate_yuan": 8_000_000,
    "export_revenue_usd": 8_200_000,
    "is_high_tech": True,
}
# group → (firm overrides, product, zh fact, en fact) for 200万 requested over 12 months.
MODEL_CASES: dict[str, tuple[dict[str, Any], ProductFeatures, str, str]] = {
    "revenue_to_amount": (
        {},
        product(),
        "营业收入 1,800万元，为申请金额的 9.0 倍",
        "Revenue ¥18.0M is 9.0× the amount requested",
    ),
    "leverage": (
        {},
        product(),
        "申请金额 200万元 占资产总额 1,200万元 的 17%",
        "The ¥2.0M requested is 17% of total assets of ¥12.0M",
    ),
    "collateral_coverage": (
        {},
        product(collateral_kind="real_estate"),
        "可抵押房产 800万元，为申请金额的 4.0 倍",
        "Real-estate collateral ¥8.0M, 4.0× the amount requested",
    ),
    "years": ({}, product(), "成立 10.3 年", "Established 10.3 years ago"),
    "rating": ({}, product(), "信用评级 BBB", "Credit rating BBB"),
    "size": ({}, product(), "企业规模为 小型", "Size class: small"),
    "exports": ({}, product(), "年出口额 US$8.2M", "Annual exports US$8.2M"),
    "innovation": (
        {},
        product(),
        "发明及实用新型专利 7 件，国家高新技术企业",
        "7 invention and utility patents, national high-tech enterprise",
    ),
    "first_loan": ({}, product(), "已有贷款记录", "Has borrowed before"),
    "term": (
        {},
        ip_pledge(),
        "申请期限 12 个月，在产品期限 12–36 个月之内",
        "Requested term 12 months, within the product's 12–36 months",
    ),
    "amount_cap": (
        {},
        product(),
        "申请金额 200万元 在该产品可贷额度 1,000万元 之内",
        "The ¥2.0M requested is within this product's limit of ¥10.0M for the firm",
    ),
}


def model(group: str, weight: float, pair: Pair, lang: Lang, amount: float = 2_000_000) -> Reason:
    reason = model_reason(group, weight, pair.firms, 0, pair.products, 0, amount, lang)
    assert reason is not None
    return reason


@pytest.mark.parametrize("group", sorted(MODEL_GROUPS))
@pytest.mark.parametrize(
    ("weight", "zh_verdict", "en_verdict"), [(0.42, "有利", "helps"), (-0.42, "不利", "hurts")]
)
def test_model_reason_states_the_fact_and_its_sign(
    group: str, weight: float, zh_verdict: str, en_verdict: str
) -> None:
    firm_overrides, the_product, zh, en = MODEL_CASES[group]
    pair = one_pair(firm(**(MODEL_FIRM | firm_overrides)), the_product)
    assert model(group, weight, pair, "zh") == Reason(
        code=group, message=f"{zh}（{zh_verdict}）", source="model", weight=weight
    )
    assert model(group, weight, pair, "en").message == f"{en} ({en_verdict})"


def test_model_cases_cover_every_group() -> None:
    assert set(MODEL_CASES) == MODEL_GROUPS


@pytest.mark.parametrize(
    ("group", "firm_overrides", "the_product", "amount", "zh", "en"),
    [
        ("rating", {"credit_rating": None}, product(), 2e6, "无信用评级", "No credit rating"),
        ("exports", {}, product(), 2e6, "无出口收入", "No export revenue"),
        (
            "first_loan",
            {"has_borrowed_before": False},
            product(),
            2e6,
            "从未贷款（首贷户）",
            "Never borrowed before (first-time borrower)",
        ),
        (
            "innovation",
            {"invention_patents": 0, "utility_patents": 0},
            product(),
            2e6,
            "暂无专利、高新技术企业或专精特新资质",
            "No patents, high-tech or 专精特新 status",
        ),
        (
            "collateral_coverage",
            {},
            product(collateral_kind="equipment"),
            2e6,
            "无可抵押设备",
            "No equipment collateral",
        ),
        (
            "collateral_coverage",
            {"core_enterprise_receivables_yuan": 6_000_000},
            product(collateral_kind="receivables"),
            2e6,
            "核心企业应收账款 600万元，为申请金额的 3.0 倍",
            "Receivables from core enterprises ¥6.0M, 3.0× the amount requested",
        ),
        (
            "collateral_coverage",
            {},
            ip_pledge(),
            2e6,
            "可质押发明及实用新型专利 7 件",
            "7 invention and utility patents to pledge",
        ),
        (
            "collateral_coverage",
            {},
            guaranteed(),
            2e6,
            "该产品无需抵押物",
            "The product takes no collateral",
        ),
        (
            "amount_cap",
            {"gov_procurement_contracts_yuan": 8_500_000},
            gov_procurement(),
            10_000_000,
            "申请金额 1,000万元 超过该产品可贷额度 850万元",
            "The ¥10.0M requested exceeds this product's limit of ¥8.5M for the firm",
        ),
    ],
)
def test_model_reason_variants(
    group: str,
    firm_overrides: dict[str, Any],
    the_product: ProductFeatures,
    amount: float,
    zh: str,
    en: str,
) -> None:
    pair = one_pair(firm(**firm_overrides), the_product, amount=amount)
    assert model(group, -1.0, pair, "zh", amount).message == f"{zh}（不利）"
    assert model(group, -1.0, pair, "en", amount).message == f"{en} (hurts)"


@pytest.mark.parametrize(
    ("term", "zh", "en"),
    [
        (
            48,
            "申请期限 48 个月，长于产品最长期限 36 个月",
            "Requested term 48 months, over the product's maximum of 36 months",
        ),
        (
            6,
            "申请期限 6 个月，短于产品最短期限 12 个月",
            "Requested term 6 months, under the product's minimum of 12 months",
        ),
    ],
)
def test_model_reason_term_outside_the_range(term: float, zh: str, en: str) -> None:
    pair = one_pair(firm(), ip_pledge())
    expected: list[tuple[Lang, str]] = [("zh", f"{zh}（不利）"), ("en", f"{en} (hurts)")]
    for lang, text in expected:
        reason = model_reason("term", -0.1, pair.firms, 0, pair.products, 0, 2e6, lang, term=term)
        assert reason is not None
        assert reason.message == text


def test_model_reason_term_defaults_to_the_firms_need() -> None:
    pair = one_pair(firm(need_term_months=None), ip_pledge())
    assert model("term", 0.1, pair, "zh").message == "未填写申请期限（产品期限 12–36 个月）（有利）"


@pytest.mark.parametrize(
    ("group", "weight"),
    [("category", 0.5), ("unknown", 1.0), ("rating", 0.0), ("rating", float("nan"))],
)
def test_model_reason_is_none_without_a_fact_or_a_sign(group: str, weight: float) -> None:
    pair = one_pair(firm(), product())
    assert model_reason(group, weight, pair.firms, 0, pair.products, 0, 2e6, "zh") is None
