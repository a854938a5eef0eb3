"""The firm (SME) profile: the table, and the create/update/public schemas around it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ConfigDict, field_validator
from sqlmodel import Field, SQLModel

from services.registry.models.columns import BigId, UtcDateTime, utcnow
from shared.enums import CreditRating
from shared.schemas.firm import FirmAttributes, check_established, check_town
from shared.types import Count, Name, PositiveYuan, ShortText, TermMonths, Usd, Yuan
from shared.vocab.credit_code import normalize_credit_code
from shared.vocab.size_class import CURRENT_RULESET, SizeClass, classify_size


class FirmProfile(FirmAttributes):
    """Everything a portal submits about a firm, apart from its credit code."""

    name: Name
    need_purpose: ShortText | None = None
    consent_matching: bool = Field(
        default=True, description="the firm agreed that its profile is used to rank products"
    )


class FirmCreate(FirmProfile):
    """A firm as a portal submits it; the credit code is the natural key."""

    credit_code: str = Field(max_length=40, description="统一社会信用代码, 18 characters")

    @field_validator("credit_code")
    @classmethod
    def _credit_code(cls, value: str) -> str:
        return normalize_credit_code(value)


class FirmUpdate(SQLModel):
    """A partial update; only the fields given change. The credit code never changes."""

    # A misspelt or read-only field (credit_code, id, version) is an error, not a silent no-op.
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    name: Name | None = None
    town_code: str | None = Field(default=None, max_length=9)
    industry_section: str | None = Field(default=None, max_length=1)
    industry_division: int | None = Field(default=None, ge=1, le=97)
    established_on: date | None = None
    employees: Count | None = None
    annual_revenue_yuan: Yuan | None = None
    total_assets_yuan: Yuan | None = None
    export_revenue_usd: Usd | None = None
    invention_patents: Count | None = None
    utility_patents: Count | None = None
    trademarks: Count | None = None
    is_high_tech: bool | None = None
    is_specialized_sme: bool | None = None
    gov_procurement_contracts_yuan: Yuan | None = None
    core_enterprise_receivables_yuan: Yuan | None = None
    is_green_listed: bool | None = None
    has_borrowed_before: bool | None = None
    collateral_real_estate_yuan: Yuan | None = None
    collateral_equipment_yuan: Yuan | None = None
    credit_rating: CreditRating | None = None
    need_amount_yuan: PositiveYuan | None = None
    need_term_months: TermMonths | None = None
    need_purpose: ShortText | None = None
    consent_matching: bool | None = None

    @field_validator("town_code")
    @classmethod
    def _town(cls, value: str | None) -> str | None:
        return None if value is None else check_town(value)

    @field_validator("established_on")
    @classmethod
    def _established(cls, value: date | None) -> date | None:
        return None if value is None else check_established(value)


class Firm(SQLModel, table=True):
    __tablename__ = "firm"
    __table_args__ = (
        sa.Index("ix_firm_owner_id", "owner_principal_id", "id"),
        sa.Index("ix_firm_town_size", "town_code", "size_class"),
        sa.Index("ix_firm_created", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    credit_code: str = Field(max_length=18, unique=True)
    owner_principal_id: int = Field(foreign_key="principal.id", sa_type=BigId)
    name: str = Field(max_length=200)
    town_code: str = Field(max_length=9)
    industry_section: str = Field(max_length=1)
    industry_division: int | None = None
    established_on: date
    employees: int
    annual_revenue_yuan: int = Field(sa_type=sa.BigInteger)
    total_assets_yuan: int = Field(sa_type=sa.BigInteger)
    export_revenue_usd: int = Field(default=0, sa_type=sa.BigInteger)
    invention_patents: int = 0
    utility_patents: int = 0
    trademarks: int = 0
    is_high_tech: bool = False
    is_specialized_sme: bool = False
    gov_procurement_contracts_yuan: int = Field(default=0, sa_type=sa.BigInteger)
    core_enterprise_receivables_yuan: int = Field(default=0, sa_type=sa.BigInteger)
    is_green_listed: bool = False
    has_borrowed_before: bool = True
    collateral_real_estate_yuan: int = Field(default=0, sa_type=sa.BigInteger)
    collateral_equipment_yuan: int = Field(default=0, sa_type=sa.BigInteger)
    credit_rating: str | None = Field(default=None, max_length=3)
    need_amount_yuan: int | None = Field(default=None, sa_type=sa.BigInteger)
    need_term_months: int | None = None
    need_purpose: str | None = Field(default=None, max_length=500)
    consent_matching: bool = True
    size_class: str = Field(max_length=6, description="derived, never entered by hand")
    size_ruleset: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    version: int = 1


class FirmPublic(FirmProfile):
    id: int
    credit_code: str
    owner_principal_id: int
    size_class: SizeClass
    size_ruleset: str
    created_at: datetime
    updated_at: datetime
    version: int


def derive_size(values: dict[str, Any]) -> tuple[str, str]:
    """Size class and the ruleset that produced it, from a firm's stored values."""
    size = classify_size(
        values["industry_section"],
        values.get("industry_division"),
        employees=values["employees"],
        revenue_yuan=values["annual_revenue_yuan"],
        total_assets_yuan=values["total_assets_yuan"],
    )
    return size.value, CURRENT_RULESET
