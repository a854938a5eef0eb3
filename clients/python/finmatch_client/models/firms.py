"""Firms (SMEs): what a portal submits, updates and reads."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field

from finmatch_client.models._base import Answer, Body
from finmatch_client.models.enums import (
    CreditRating,
    ProvenanceStatus,
    RegisterKind,
    SizeClass,
)


class FirmFeaturesBody(Body):
    """A firm's features as matching reads them (shared by a profile and a history line)."""

    town_code: str
    industry_section: str
    industry_division: int | None = None
    established_on: date
    employees: int
    annual_revenue_yuan: int
    total_assets_yuan: int
    export_revenue_usd: int = 0
    invention_patents: int = 0
    utility_patents: int = 0
    trademarks: int = 0
    is_high_tech: bool = False
    is_specialized_sme: bool = False
    gov_procurement_contracts_yuan: int = 0
    core_enterprise_receivables_yuan: int = 0
    is_green_listed: bool = False
    has_borrowed_before: bool = True
    collateral_real_estate_yuan: int = 0
    collateral_equipment_yuan: int = 0
    credit_rating: CreditRating | None = None
    need_amount_yuan: int | None = None
    need_term_months: int | None = None


class _FirmFields(FirmFeaturesBody):
    """A firm's profile. Money is integer yuan (exports: US dollars); ``need_*`` state the
    financing need; ``has_borrowed_before=False`` marks a first-loan (首贷户) candidate."""

    name: str
    need_purpose: str | None = None
    consent_matching: bool = True


class FirmCreate(_FirmFields):
    """A firm as a portal submits it; the credit code (统一社会信用代码) is its natural key:
    submitting a code this portal registered before updates that firm."""

    credit_code: str


class FirmUpdate(Body):
    """A partial update: only the fields you set are sent (the credit code never changes)."""

    name: str | None = None
    town_code: str | None = None
    industry_section: str | None = None
    industry_division: int | None = None
    established_on: date | None = None
    employees: int | None = None
    annual_revenue_yuan: int | None = None
    total_assets_yuan: int | None = None
    export_revenue_usd: int | None = None
    invention_patents: int | None = None
    utility_patents: int | None = None
    trademarks: int | None = None
    is_high_tech: bool | None = None
    is_specialized_sme: bool | None = None
    gov_procurement_contracts_yuan: int | None = None
    core_enterprise_receivables_yuan: int | None = None
    is_green_listed: bool | None = None
    has_borrowed_before: bool | None = None
    collateral_real_estate_yuan: int | None = None
    collateral_equipment_yuan: int | None = None
    credit_rating: CreditRating | None = None
    need_amount_yuan: int | None = None
    need_term_months: int | None = None
    need_purpose: str | None = None
    consent_matching: bool | None = None


class InputWarning(Answer):
    """A figure taken as given that looks wrong: the portal may ask the firm to check it."""

    code: str
    field: str
    message: str


class RegisterReference(Answer):
    """The official register (and its published version) a value was read from."""

    kind: RegisterKind
    version: int
    as_of: date


class AttributeProvenance(Answer):
    """A gating attribute: the portal's value, the value matching uses, and where it comes
    from (an official register wherever one covers it; an expired certificate stops counting
    the day after its last valid day)."""

    status: ProvenanceStatus
    declared: bool | int
    value: bool | int
    source: RegisterReference | None = None
    evidence: list[dict[str, Any]] = Field(default_factory=list)
    reason: str | None = None


class FirmPublic(Answer):
    """A firm as the API answers it; ``version`` is its ETag (send it back to update)."""

    id: int
    credit_code: str
    owner_principal_id: int
    name: str
    town_code: str
    industry_section: str
    industry_division: int | None = None
    established_on: date
    employees: int
    annual_revenue_yuan: int
    total_assets_yuan: int
    export_revenue_usd: int = 0
    invention_patents: int = 0
    utility_patents: int = 0
    trademarks: int = 0
    is_high_tech: bool = False
    is_specialized_sme: bool = False
    gov_procurement_contracts_yuan: int = 0
    core_enterprise_receivables_yuan: int = 0
    is_green_listed: bool = False
    has_borrowed_before: bool = True
    collateral_real_estate_yuan: int = 0
    collateral_equipment_yuan: int = 0
    credit_rating: CreditRating | None = None
    need_amount_yuan: int | None = None
    need_term_months: int | None = None
    need_purpose: str | None = None
    consent_matching: bool = True
    size_class: SizeClass
    size_ruleset: str
    created_at: datetime
    updated_at: datetime
    version: int
    provenance: dict[str, AttributeProvenance]
    warnings: list[InputWarning]
