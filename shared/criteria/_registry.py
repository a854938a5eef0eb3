"""The criteria themselves, in the order reasons and near misses list them, and lookups."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from shared.criteria._model import Comparison, Criterion, Reading, Unit, _flag, _listed, _number
from shared.enums import RegisterKind

CRITERIA: tuple[Criterion, ...] = (
    _listed(
        "elig_town_codes",
        "town_code",
        Unit.TOWN,
        ("服务镇街", "Towns served"),
        (
            "仅限 {names} 的企业（本企业在 {own}）",
            "Only for firms in {names} (this firm is in {own})",
        ),
        ("企业位于 {own}，在产品服务区域内", "Located in {own}, within the product's area"),
        320,
        ["441900401"],
    ),
    _listed(
        "elig_industry_sections",
        "industry_section",
        Unit.SECTION,
        ("支持行业", "Industry sections served"),
        ("仅限 {names} 企业（本企业属于 {own}）", "Only for firms in {names} (this firm: {own})"),
        ("所属行业 {own} 在产品支持范围内", "Sector {own} is among those the product serves"),
        310,
        ["C"],
        what_if="industry_sections",
    ),
    _listed(
        "elig_size_classes",
        "size_class",
        Unit.SIZE,
        ("面向企业规模", "Size classes served"),
        ("仅面向 {names} 企业（本企业为 {own}）", "Only for {names} firms (this firm is {own})"),
        ("企业规模为 {own}，属于产品面向的企业", "A {own} firm, as the product requires"),
        300,
        ["small", "micro"],
        what_if="size_classes",
    ),
    _number(
        "min_years_established",
        Reading.VALUE,
        Unit.YEARS,
        ("established_on",),
        ("成立年限下限（年）", "Minimum years established"),
        (
            "成立 {a} 年，要求满 {r} 年（还差 {g} 年）",
            "Established {a} ago; the product requires {r} ({g} short)",
        ),
        ("成立 {a} 年 ≥ 要求 {r} 年", "Established {a} ago ≥ {r} required"),
        80,
        2,
        what_if="min_years",
    ),
    _number(
        "max_years_established",
        Reading.VALUE,
        Unit.YEARS,
        ("established_on",),
        ("成立年限上限（年）", "Maximum years established"),
        (
            "成立 {a} 年，超过该产品上限 {r} 年（超出 {g} 年）",
            "Established {a} ago, over the product's limit of {r} ({g} over)",
        ),
        ("成立 {a} 年，未超过上限 {r} 年", "Established {a} ago, within the limit of {r}"),
        90,
        5,
        maximum=True,
        actionable=False,  # a firm cannot get younger
    ),
    _number(
        "min_revenue_yuan",
        Reading.VALUE,
        Unit.YUAN,
        ("annual_revenue_yuan",),
        ("营业收入下限（元）", "Minimum annual revenue (yuan)"),
        (
            "营业收入 {a}，距要求 {r} 差 {g}",
            "Annual revenue {a}; the product requires {r} ({g} short)",
        ),
        ("营业收入 {a} ≥ 要求 {r}", "Annual revenue {a} ≥ {r} required"),
        40,
        5_000_000,
    ),
    _number(
        "max_revenue_yuan",
        Reading.VALUE,
        Unit.YUAN,
        ("annual_revenue_yuan",),
        ("营业收入上限（元）", "Maximum annual revenue (yuan)"),
        (
            "营业收入 {a} 超过该产品上限 {r}（超出 {g}）",
            "Annual revenue {a} exceeds the product's ceiling of {r} (by {g})",
        ),
        ("营业收入 {a} 未超过上限 {r}", "Annual revenue {a} within the ceiling of {r}"),
        50,
        400_000_000,
        maximum=True,
        actionable=False,  # shrinking to fit a product is not advice
    ),
    _number(
        "min_total_assets_yuan",
        Reading.VALUE,
        Unit.YUAN,
        ("total_assets_yuan",),
        ("资产总额下限（元）", "Minimum total assets (yuan)"),
        (
            "资产总额 {a}，距要求 {r} 差 {g}",
            "Total assets {a}; the product requires {r} ({g} short)",
        ),
        ("资产总额 {a} ≥ 要求 {r}", "Total assets {a} ≥ {r} required"),
        55,
        10_000_000,
    ),
    _number(
        "min_employees",
        Reading.VALUE,
        Unit.COUNT,
        ("employees",),
        ("从业人员下限（人）", "Minimum employees"),
        (
            "从业人员 {a} 人，距要求 {r} 人 差 {g} 人",
            "{a} employees; the product requires {r} ({g} short)",
        ),
        ("从业人员 {a} 人 ≥ 要求 {r} 人", "{a} employees ≥ {r} required"),
        60,
        50,
    ),
    _number(
        "min_export_usd",
        Reading.VALUE,
        Unit.USD,
        ("export_revenue_usd",),
        ("年出口额下限（美元）", "Minimum annual exports (US$)"),
        (
            "年出口额 {a}，距要求 {r} 差 {g}",
            "Annual exports {a}; the product requires {r} ({g} short)",
        ),
        ("出口额 {a} ≥ {category}门槛 {r}", "Exports {a} ≥ the {category} threshold of {r}"),
        10,
        10_000_000,
    ),
    _number(
        "min_patents",
        Reading.SUM,
        Unit.COUNT,
        ("invention_patents", "utility_patents"),
        ("发明及实用新型专利下限（件）", "Minimum invention + utility patents"),
        (
            "发明及实用新型专利 {a} 件，距要求 {r} 件 差 {g} 件",
            "{a} invention and utility patents; the product requires {r} ({g} short)",
        ),
        (
            "拥有发明及实用新型专利 {a} 件 ≥ 要求 {r} 件 → 符合{category}条件",
            "Holds {a} invention and utility patents ≥ {r} required → "
            "meets the {category} conditions",
        ),
        20,
        3,
    ),
    _number(
        "min_invention_patents",
        Reading.VALUE,
        Unit.COUNT,
        ("invention_patents",),
        ("发明专利下限（件）", "Minimum invention patents"),
        (
            "发明专利 {a} 件，距要求 {r} 件 差 {g} 件",
            "{a} invention patents; the product requires {r} ({g} short)",
        ),
        (
            "拥有发明专利 {a} 件 ≥ 要求 {r} 件 → 符合{category}条件",
            "Holds {a} invention patents ≥ {r} required → meets the {category} conditions",
        ),
        15,
        1,
    ),
    _number(
        "min_trademarks",
        Reading.VALUE,
        Unit.COUNT,
        ("trademarks",),
        ("注册商标下限（件）", "Minimum registered trademarks"),
        (
            "注册商标 {a} 件，距要求 {r} 件 差 {g} 件",
            "{a} registered trademarks; the product requires {r} ({g} short)",
        ),
        (
            "拥有注册商标 {a} 件 ≥ 要求 {r} 件 → 符合{category}条件",
            "Holds {a} registered trademarks ≥ {r} required → meets the {category} conditions",
        ),
        25,
        1,
    ),
    _flag(
        "requires_high_tech",
        "is_high_tech",
        ("国家高新技术企业", "National high-tech enterprise"),
        ("需为国家高新技术企业", "Requires national high-tech enterprise status"),
        ("国家高新技术企业", "National high-tech enterprise"),
        register=RegisterKind.HIGH_TECH,
    ),
    _flag(
        "requires_specialized_sme",
        "is_specialized_sme",
        ("专精特新企业", "专精特新 (specialised SME)"),
        ("需为专精特新企业", "Requires 专精特新 (specialised SME) status"),
        ("专精特新企业", "专精特新 (specialised SME)"),
        register=RegisterKind.SPECIALIZED_SME,
    ),
    _flag(
        "requires_gov_procurement",
        "gov_procurement_contracts_yuan",
        ("持有政府采购合同", "Holds a government procurement contract"),
        ("需持有政府采购合同", "Requires a government procurement contract"),
        ("持有政府采购合同 {v}", "Holds government procurement contracts of {v}"),
        reading=Reading.HAS,
        unit=Unit.YUAN,
        register=RegisterKind.GOV_PROCUREMENT_AWARDS,
    ),
    _flag(
        "requires_receivables",
        "core_enterprise_receivables_yuan",
        ("持有核心企业应收账款", "Holds receivables from a core enterprise"),
        ("需持有核心企业应收账款", "Requires receivables from a core enterprise"),
        ("持有核心企业应收账款 {v}", "Holds receivables of {v} from core enterprises"),
        reading=Reading.HAS,
        unit=Unit.YUAN,
    ),
    _flag(
        "requires_green",
        "is_green_listed",
        ("绿色企业名录", "Listed as a green enterprise"),
        ("需列入绿色企业名录", "Requires a listing as a green enterprise"),
        ("已列入绿色企业名录", "Listed as a green enterprise"),
        register=RegisterKind.GREEN_LIST,
    ),
    _flag(
        "requires_first_loan",
        "has_borrowed_before",
        ("首贷户（从未贷款）", "First-time borrower (never borrowed)"),
        (
            "仅限首次贷款的企业（首贷户），本企业已有贷款记录",
            "Only for first-time borrowers; this firm has borrowed before",
        ),
        (
            "首次贷款（首贷户），符合{category}产品条件",
            "First-time borrower → meets the {category} conditions",
        ),
        reading=Reading.LACKS,
    ),
    Criterion(
        code="min_credit_rating",
        compare=Comparison.RATING,
        firm_fields=("credit_rating",),
        reading=Reading.VALUE,
        unit=Unit.RATING,
        actionable=True,
        label=("信用评级下限", "Minimum credit rating"),
        unmet=(
            "信用评级 {a}，要求 {r} 及以上（差 {g} 级）",
            "Credit rating {a}; the product requires {r} or better ({g} short)",
        ),
        unmet_unknown=(
            "无信用评级，要求 {r} 及以上",
            "No credit rating; the product requires {r} or better",
        ),
        met=(
            "信用评级 {a}，满足 {r} 及以上要求",
            "Credit rating {a} meets the {r}-or-better requirement",
        ),
        met_rank=100,
        example="BBB",
    ),
)

CRITERIA_BY_CODE: Mapping[str, Criterion] = MappingProxyType({c.code: c for c in CRITERIA})
CRITERION_CODES: tuple[str, ...] = tuple(c.code for c in CRITERIA)
# The criteria officials may change in the policy what-if, by the name the request uses.
WHAT_IF: Mapping[str, Criterion] = MappingProxyType(
    {c.what_if: c for c in CRITERIA if c.what_if is not None}
)
# (minimum, maximum) criteria over the same firm value: a product's minimum may not exceed its
# maximum (min_revenue_yuan ≤ max_revenue_yuan, min_years_established ≤ max_years_established).
RANGE_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (low.code, high.code)
    for low in CRITERIA
    for high in CRITERIA
    if low.compare is Comparison.AT_LEAST
    and high.compare is Comparison.AT_MOST
    and (low.firm_fields, low.reading) == (high.firm_fields, high.reading)
)
