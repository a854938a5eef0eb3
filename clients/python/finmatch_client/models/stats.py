"""Officials' statistics: overview, breakdowns, league table, products, targets, coverage gaps,
registered firms, the official registers' coverage and the policy what-if. Cells of fewer than
3 firms are withheld (``suppressed``, figures None)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from finmatch_client.models._base import Answer, Body
from finmatch_client.models.enums import Dimension, ProductCategory
from finmatch_client.models.products import ReachCell


class Overview(Answer):
    filters: dict[str, Any]
    synthetic: bool
    firms_registered: int
    firms_with_need: int
    firms_matched: int
    applications: int
    approvals: int
    rejections: int
    pending: int
    approval_rate: float | None
    requested_amount_yuan: int
    approved_amount_yuan: int
    first_loan_firms: int
    first_loan_rate: float | None
    small_micro_share_of_approved: float | None
    response_hours_median: float | None
    response_hours_p90: float | None
    average_approved_rate_bp: float | None


class BreakdownRow(Answer):
    key: str
    label_zh: str
    label_en: str
    suppressed: bool
    firms: int | None
    applications: int | None
    approved: int | None
    rejected: int | None
    pending: int | None
    approval_rate: float | None
    requested_amount_yuan: int | None
    approved_amount_yuan: int | None
    first_loan_approved: int | None


class Breakdown(Answer):
    by: Dimension
    filters: dict[str, Any]
    town_code: str | None
    rows: list[BreakdownRow]


class LeagueRow(Answer):
    institution_id: int
    name: str
    kind: str
    suppressed: bool
    applications: int | None
    decided: int | None
    approved: int | None
    approval_rate: float | None
    response_hours_median: float | None
    response_hours_p90: float | None
    approved_amount_yuan: int | None
    small_micro_approved_amount_yuan: int | None
    first_loans: int | None
    overdue: int | None
    overdue_share: float | None


class League(Answer):
    deadline_working_days: int
    filters: dict[str, Any]
    rows: list[LeagueRow]


class ProductEligibilityRow(Answer):
    product_id: int
    name: str
    category: str
    institution_id: int
    institution_name: str
    suppressed: bool
    applications: int | None
    eligible: int | None
    ineligible: int | None
    unknown: int | None
    ineligible_share: float | None


class ProductEligibility(Answer):
    filters: dict[str, Any]
    rows: list[ProductEligibilityRow]


class Target(Answer):
    """One action-plan target, set for the whole city. For a town, a count or amount is its
    contribution to the city's total (``measure="contribution"``, ``met`` None)."""

    key: str
    label_zh: str
    label_en: str
    plan_item: int
    unit: str
    comparison: str
    target: float
    current: float | None
    progress: float | None
    measure: Literal["total", "contribution", "share"]
    met: bool | None


class Targets(Answer):
    town_code: str | None
    scope: Literal["city", "town"]
    rows: list[Target]


class CoverageGap(Answer):
    """Firms of a town and section with a stated need that no active product admits."""

    town_code: str
    town_zh: str
    town_en: str
    industry_section: str
    section_zh: str
    section_en: str
    firms_with_need: int | None
    firms_with_need_no_eligible: int | None
    suppressed: bool


class MatchedGap(Answer):
    """Firms of a town and section that were matched but never applied."""

    town_code: str
    town_zh: str
    town_en: str
    industry_section: str
    section_zh: str
    section_en: str
    suppressed: bool
    firms_matched: int | None
    firms_matched_no_application: int | None


class Coverage(Answer):
    """``degraded``: the matching service could not answer, ``no_eligible_product`` is empty."""

    filters: dict[str, Any]
    no_eligible_product: list[CoverageGap]
    matched_no_application: list[MatchedGap]
    degraded: bool


class SizeClassFirms(Answer):
    firms: int
    with_need: int


class FirmsRegistered(Answer):
    town_code: str | None
    firms: int
    by_size_class: dict[str, SizeClassFirms]


class RegisterCoverageRow(Answer):
    """One register in a scope: registered firms on its current list (valid today), and how
    many of them were matched, applied and were approved. ``green_credit``: the green list's
    firms approved for a green-credit product (action-plan item 44); None for other lists."""

    kind: str
    label_zh: str
    label_en: str
    suppressed: bool
    firms: int | None
    matched: int | None
    applied: int | None
    approved: int | None
    green_credit: int | None


class RegisterCoverageTotal(RegisterCoverageRow):
    """A register's totals for the scope, with its published version (None: none yet)."""

    version: int | None
    as_of: date | None


class RegisterCoverageTown(Answer):
    town_code: str
    town_zh: str
    town_en: str
    registers: list[RegisterCoverageRow]


class RegisterCoverage(Answer):
    as_of: date
    scope: Literal["city", "town"]
    town_code: str | None
    registers: list[RegisterCoverageTotal]
    by_town: list[RegisterCoverageTown]


WhatIfCriterion = Literal[
    "industry_sections",
    "size_classes",
    "min_years",
    "max_years_established",
    "min_revenue_yuan",
    "max_revenue_yuan",
    "min_total_assets_yuan",
    "min_employees",
    "min_export_usd",
    "min_patents",
    "min_invention_patents",
    "min_trademarks",
    "elig_industry_sections",
    "elig_size_classes",
    "min_years_established",
]


class WhatIfRequest(Body):
    """Change one criterion of a product (``product_id``) or of a whole ``category``: name
    exactly one. ``value`` is the new threshold (None removes it) or the allowed
    sections/size classes."""

    product_id: int | None = None
    category: ProductCategory | None = None
    criterion: WhatIfCriterion
    value: int | float | list[str] | None
    town_code: str | None = None


class WhatIfAnswer(Answer):
    """Firms eligible for at least one of ``products`` now and once the criterion changes;
    the newly qualifying by industry section and size class, with the amount they ask for."""

    criterion: str
    value: int | float | list[str] | None
    products: list[int]
    town_code: str | None
    catalogue_version: str
    as_of: str
    firms_considered: int
    baseline_eligible: int
    changed_eligible: int
    newly_qualifying: int
    no_longer_qualifying: int
    requested_amount_yuan: int
    by_industry: list[ReachCell]
    by_size_class: list[ReachCell]
