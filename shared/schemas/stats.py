"""The officials' statistics answers: overview, breakdowns, league table, coverage gaps, targets."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class Dimension(StrEnum):
    """What a breakdown groups by."""

    TOWN = "town"
    CATEGORY = "category"
    INSTITUTION = "institution"
    SIZE_CLASS = "size_class"
    INDUSTRY = "industry"
    MONTH = "month"


class Overview(BaseModel):
    filters: dict[str, Any]
    synthetic: bool = Field(description="True when the figures come from the demo data")
    firms_registered: int
    firms_with_need: int
    firms_matched: int
    applications: int
    approvals: int
    rejections: int
    pending: int
    approval_rate: float | None = Field(description="approvals / decided applications")
    requested_amount_yuan: int
    approved_amount_yuan: int
    first_loan_firms: int = Field(description="首贷户: firms whose first loan was approved")
    first_loan_rate: float | None = Field(description="first-loan firms / firms approved")
    small_micro_share_of_approved: float | None
    response_hours_median: float | None
    response_hours_p90: float | None
    average_approved_rate_bp: float | None


class BreakdownRow(BaseModel):
    key: str
    label_zh: str
    label_en: str
    suppressed: bool = Field(description="fewer than 3 firms: figures withheld")
    firms: int | None
    applications: int | None
    approved: int | None
    rejected: int | None
    pending: int | None
    approval_rate: float | None
    requested_amount_yuan: int | None
    approved_amount_yuan: int | None
    first_loan_approved: int | None


class Breakdown(BaseModel):
    by: Dimension
    filters: dict[str, Any]
    town_code: str | None
    rows: list[BreakdownRow]


class LeagueRow(BaseModel):
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
    overdue: int | None = Field(description="answered after the deadline, or not yet and late")
    overdue_share: float | None


class ProductEligibilityRow(BaseModel):
    product_id: int
    name: str
    category: str
    institution_id: int
    institution_name: str
    suppressed: bool = Field(description="fewer than 3 firms applied: figures withheld")
    applications: int | None
    eligible: int | None
    ineligible: int | None = Field(description="found ineligible by matching's rules at submission")
    unknown: int | None = Field(description="not checked: matching could not be asked")
    ineligible_share: float | None = Field(
        description="ineligible ÷ (eligible + ineligible); None when none was checked"
    )


class ProductEligibility(BaseModel):
    filters: dict[str, Any]
    rows: list[ProductEligibilityRow]


class League(BaseModel):
    deadline_working_days: int
    filters: dict[str, Any]
    rows: list[LeagueRow]


class MatchedGap(BaseModel):
    town_code: str
    town_zh: str
    town_en: str
    industry_section: str
    section_zh: str
    section_en: str
    suppressed: bool
    firms_matched: int | None
    firms_matched_no_application: int | None


class MatchedGaps(BaseModel):
    filters: dict[str, Any]
    rows: list[MatchedGap]


TargetMeasure = Literal["total", "contribution", "share"]


class Target(BaseModel):
    """One action-plan target: the plan sets it for the whole city.

    For a town the additive targets (firms, amounts) answer the town's part of the city's total:
    a part can neither meet nor miss the whole's target, so ``met`` is null then.
    """

    key: str
    label_zh: str
    label_en: str
    plan_item: int
    unit: str
    comparison: str
    target: float = Field(description="the city-wide target of the action plan")
    current: float | None
    progress: float | None = Field(
        description="current / target; for a contribution, the part of the city target it makes"
    )
    measure: TargetMeasure = Field(
        description="total: the city's own figure; contribution: the town's part of the city's "
        "total; share: a ratio within the scope, compared with the city's threshold"
    )
    met: bool | None = Field(description="null for a contribution: only the city's total is judged")


class Targets(BaseModel):
    town_code: str | None
    scope: Literal["city", "town"]
    rows: list[Target]


class RegisterCoverageRow(BaseModel):
    """One register's coverage in a scope: of the registered firms on its current list (valid
    today), how many were matched, applied and were approved (ever, on the platform)."""

    kind: str
    label_zh: str
    label_en: str
    suppressed: bool = Field(description="fewer than 3 firms: figures withheld (town rows only)")
    firms: int | None = Field(description="registered firms on the list, valid today")
    matched: int | None = Field(description="of them, firms shown at least one match")
    applied: int | None = Field(description="of them, firms that applied at least once")
    approved: int | None = Field(description="of them, firms with an approved application")
    green_credit: int | None = Field(
        description="green list only: firms approved for a green-credit (绿色信贷) product "
        "(action-plan item 44); null for the other registers"
    )


class RegisterCoverageTotal(RegisterCoverageRow):
    version: int | None = Field(description="the register's published version; null if none")
    as_of: date | None = Field(description="the published list's as-of date")


class RegisterCoverageTown(BaseModel):
    town_code: str
    town_zh: str
    town_en: str
    registers: list[RegisterCoverageRow]


class RegisterCoverage(BaseModel):
    """Coverage of the official registers (issue 16): totals for the scope, and per town."""

    as_of: date = Field(description="the day (China time) lists are read as valid on")
    scope: Literal["city", "town"]
    town_code: str | None
    registers: list[RegisterCoverageTotal]
    by_town: list[RegisterCoverageTown]
