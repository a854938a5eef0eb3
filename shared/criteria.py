"""The eligibility criterion registry: every rule a product may set, declared once.

An entry says which product field sets the rule, which firm fields it reads and how, how the
two compare, the unit its values are shown in, whether a firm can act on a failure, its names
and its reason and near-miss wording in Chinese and English, and the name (if any) under which
officials may change it in the policy what-if. Product validation and OpenAPI descriptions
(shared/schemas/product.py), vectorised eligibility, reasons and near misses (matching), the
what-if request (shared/schemas/policy.py), the dashboard's what-if panel and the synthetic
world's ground truth (registry seed) all read these entries; none keeps a list of its own.

The arithmetic here (``firm_value``, ``shortfall``) uses plain operators only, so the same
functions serve one firm (numbers) and many at once (numpy columns).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from shared.enums import CreditRating


class Comparison(StrEnum):
    """How the firm's value is held against the product's setting."""

    AT_LEAST = "at_least"  # firm value ≥ the product's minimum
    AT_MOST = "at_most"  # firm value ≤ the product's maximum
    ONE_OF = "one_of"  # firm's code in the product's list (an empty list allows all)
    REQUIRED = "required"  # the product's flag set → the firm must hold the status
    RATING = "rating"  # firm's credit rating at or above the product's floor


class Reading(StrEnum):
    """How the firm's fields become the value a criterion compares."""

    VALUE = "value"  # the one field (a date: years since; a rating: its rank)
    SUM = "sum"  # the fields added together
    HAS = "has"  # the field is true or above zero
    LACKS = "lacks"  # the field is false or zero


class Unit(StrEnum):
    """What a value is, which decides how it is printed."""

    YUAN = "yuan"
    USD = "usd"
    COUNT = "count"
    YEARS = "years"
    RATING = "rating"
    FLAG = "flag"
    TOWN = "town"
    SECTION = "section"
    SIZE = "size"


@dataclass(frozen=True)
class Criterion:
    """One eligibility rule. Messages are format strings:

    - unmet: ``{a}`` the firm's value, ``{r}`` the requirement, ``{g}`` the gap (numbers);
      ``{names}`` the allowed ones and ``{own}`` the firm's (lists); none for flags.
    - met: ``{a}``, ``{r}``, ``{category}`` (the product's category), ``{v}`` the firm's
      value of the field a flag reads, ``{own}`` (lists).
    """

    code: str  # the product field that sets it, and the code reasons and near misses carry
    compare: Comparison
    firm_fields: tuple[str, ...]  # FirmFeatures fields it reads
    reading: Reading
    unit: Unit
    actionable: bool  # a firm can change it (grow, certify), unlike its town or its age
    label: tuple[str, str]  # (zh, en) name of the criterion
    unmet: tuple[str, str]
    met: tuple[str, str]
    met_rank: int  # order among a product's met rules: the most specific first
    example: Any  # a typical setting, for documentation and tests
    what_if: str | None = None  # the policy what-if's name for it; None: officials cannot
    unmet_unknown: tuple[str, str] | None = None  # unmet wording when the firm has no value

    @property
    def product_field(self) -> str:
        return self.code

    @property
    def is_list(self) -> bool:
        return self.compare is Comparison.ONE_OF

    @property
    def is_numeric(self) -> bool:
        """Its failures have a gap in ``unit`` (flags and lists have none)."""
        return self.compare in (Comparison.AT_LEAST, Comparison.AT_MOST, Comparison.RATING)

    @property
    def reads_age(self) -> bool:
        return "established_on" in self.firm_fields

    @property
    def description(self) -> str:
        """The product field's OpenAPI description."""
        zh, en = self.label
        meaning = {
            Comparison.AT_LEAST: "the firm's value must be at least this; null: no minimum",
            Comparison.AT_MOST: "the firm's value must be at most this; null: no maximum",
            Comparison.ONE_OF: "the firm's must be one of these; empty: no restriction",
            Comparison.REQUIRED: "true: only firms that hold this",
            Comparison.RATING: "the firm's credit rating must be this or better; null: none",
        }[self.compare]
        reads = " + ".join(self.firm_fields)
        return f"{en} / {zh}: {meaning} (reads the firm's {reads})"


def _number(
    code: str,
    reading: Reading,
    unit: Unit,
    fields: tuple[str, ...],
    label: tuple[str, str],
    unmet: tuple[str, str],
    met: tuple[str, str],
    met_rank: int,
    example: Any,
    *,
    maximum: bool = False,
    actionable: bool = True,
    what_if: str | None = None,
) -> Criterion:
    return Criterion(
        code=code,
        compare=Comparison.AT_MOST if maximum else Comparison.AT_LEAST,
        firm_fields=fields,
        reading=reading,
        unit=unit,
        actionable=actionable,
        label=label,
        unmet=unmet,
        met=met,
        met_rank=met_rank,
        example=example,
        what_if=code if what_if is None else what_if,
    )


def _flag(
    code: str,
    field: str,
    label: tuple[str, str],
    unmet: tuple[str, str],
    met: tuple[str, str],
    *,
    reading: Reading = Reading.VALUE,
    unit: Unit = Unit.FLAG,
) -> Criterion:
    return Criterion(
        code=code,
        compare=Comparison.REQUIRED,
        firm_fields=(field,),
        reading=reading,
        unit=unit,
        actionable=True,
        label=label,
        unmet=unmet,
        met=met,
        met_rank=200,
        example=True,
    )


def _listed(
    code: str,
    field: str,
    unit: Unit,
    label: tuple[str, str],
    unmet: tuple[str, str],
    met: tuple[str, str],
    met_rank: int,
    example: list[str],
    what_if: str | None = None,
) -> Criterion:
    return Criterion(
        code=code,
        compare=Comparison.ONE_OF,
        firm_fields=(field,),
        reading=Reading.VALUE,
        unit=unit,
        actionable=False,  # a firm does not move town or sector to get a loan
        label=label,
        unmet=unmet,
        met=met,
        met_rank=met_rank,
        example=example,
        what_if=what_if,
    )


# In the order near misses list a product's failures.
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
    ),
    _flag(
        "requires_specialized_sme",
        "is_specialized_sme",
        ("专精特新企业", "专精特新 (specialised SME)"),
        ("需为专精特新企业", "Requires 专精特新 (specialised SME) status"),
        ("专精特新企业", "专精特新 (specialised SME)"),
    ),
    _flag(
        "requires_gov_procurement",
        "gov_procurement_contracts_yuan",
        ("持有政府采购合同", "Holds a government procurement contract"),
        ("需持有政府采购合同", "Requires a government procurement contract"),
        ("持有政府采购合同 {v}", "Holds government procurement contracts of {v}"),
        reading=Reading.HAS,
        unit=Unit.YUAN,
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


# --- the arithmetic, for one firm or for numpy columns of many ------------------------------


def _anniversary(start: date, year: int) -> date:
    # A firm founded on 29 February has its anniversary on the 28th in a common year.
    return (
        start.replace(year=year)
        if (start.month, start.day) != (2, 29)
        else date(year, 2, 29 if calendar.isleap(year) else 28)
    )


def years_between(start: date, as_of: date) -> float:
    """A firm's age in years on ``as_of``, by the calendar: whole on each anniversary (so "at
    least 2 years" holds on the second one, as a bank reads it), and in between the share of
    the current anniversary year that has passed. Never negative."""
    if as_of <= start:
        return 0.0
    years = as_of.year - start.year
    if _anniversary(start, start.year + years) > as_of:
        years -= 1
    last = _anniversary(start, start.year + years)
    following = _anniversary(start, start.year + years + 1)
    return years + (as_of - last).days / (following - last).days


def rating_rank(rating: CreditRating | str | None) -> int:
    """0 for unrated (fails any rating floor), 1 (C) … 7 (AAA)."""
    return 0 if rating is None else CreditRating(rating).rank


def field_number(field: str, value: Any, as_of: date) -> float:
    """A firm field's value as a number a criterion can compare: a date becomes the years
    since (on ``as_of``), a credit rating its rank, a flag 0 or 1."""
    if isinstance(value, date):
        return years_between(value, as_of)
    if field == "credit_rating":
        return float(rating_rank(value))
    return float(value or 0)


def combine(criterion: Criterion, values: Sequence[Any]) -> Any:
    """The firm's value for ``criterion`` from its fields' values (numbers or columns)."""
    if criterion.reading is Reading.SUM:
        total = values[0]
        for value in values[1:]:
            total = total + value
        return total
    if criterion.reading is Reading.HAS:
        return values[0] > 0
    if criterion.reading is Reading.LACKS:
        return values[0] == 0
    return values[0]


def setting_number(criterion: Criterion, setting: Any) -> float | None:
    """A product's setting of a non-list criterion as the number firm values compare with;
    None where the product does not set it."""
    if setting is None or setting is False:
        return None
    if criterion.compare is Comparison.REQUIRED:
        return 1.0  # a firm that holds the status has the value 1
    if criterion.compare is Comparison.RATING:
        return float(rating_rank(setting))
    return float(setting)


def shortfall(criterion: Criterion, actual: Any, required: Any) -> Any:
    """How far the firm's value is on the failing side of the setting: > 0 fails, ≤ 0 meets.

    Numbers or numpy columns alike; a NaN setting (not set) gives NaN, which fails nothing.
    """
    if criterion.compare is Comparison.AT_MOST:
        return actual - required
    return required - actual


def firm_value(criterion: Criterion, firm: Mapping[str, Any], as_of: date) -> Any:
    """One firm's value for ``criterion``: a number, or the code a list criterion checks."""
    if criterion.is_list:
        return str(firm[criterion.firm_fields[0]])
    numbers = [field_number(f, firm.get(f), as_of) for f in criterion.firm_fields]
    return float(combine(criterion, numbers))


def fails(criterion: Criterion, firm: Mapping[str, Any], setting: Any, as_of: date) -> bool:
    """Whether one firm (its fields as a mapping) fails a product's ``setting``."""
    if criterion.is_list:
        return bool(setting) and firm_value(criterion, firm, as_of) not in [str(s) for s in setting]
    required = setting_number(criterion, setting)
    if required is None:
        return False
    return bool(shortfall(criterion, firm_value(criterion, firm, as_of), required) > 0)
