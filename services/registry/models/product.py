"""Institutions and their financing products, with eligibility as structured fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ConfigDict, field_validator, model_validator
from sqlmodel import Field, SQLModel

from services.registry.models.columns import BigId, UtcDateTime, utcnow
from shared.enums import AmountCapBasis, CollateralKind, CreditRating
from shared.schemas.product import (
    MAX_LIST,
    Eligibility,
    ProductTerms,
    check_ranges,
    valid_sections,
    valid_town_codes,
)
from shared.types import (
    Count,
    FeeBp,
    LongText,
    Name,
    Percent,
    PositiveYuan,
    RateBp,
    TermMonths,
    Usd,
    Yuan,
)
from shared.vocab.categories import ProductCategory
from shared.vocab.size_class import SizeClass


class Institution(SQLModel, table=True):
    __tablename__ = "institution"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    name: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ProductCreate(ProductTerms, Eligibility):
    name: Name
    category: ProductCategory
    description: LongText = ""
    active: bool = True

    @model_validator(mode="after")
    def _ranges(self) -> ProductCreate:
        check_ranges(self)
        return self


class ProductUpdate(SQLModel):
    """Partial update of a product; ranges are re-checked against the stored values."""

    # A misspelt or read-only field (credit_code, id, version) is an error, not a silent no-op.
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    name: Name | None = None
    category: ProductCategory | None = None
    description: LongText | None = None
    active: bool | None = None
    amount_min_yuan: PositiveYuan | None = None
    amount_max_yuan: PositiveYuan | None = None
    term_min_months: TermMonths | None = None
    term_max_months: TermMonths | None = None
    rate_min_bp: RateBp | None = None
    rate_max_bp: RateBp | None = None
    guarantee_fee_bp: FeeBp | None = None
    interest_subsidy_pct: Percent | None = None
    interest_subsidy_cap_yuan: Yuan | None = None
    collateral_kind: CollateralKind | None = None
    amount_cap_basis: AmountCapBasis | None = None
    amount_cap_pct: Percent | None = None
    elig_town_codes: list[str] | None = Field(default=None, max_length=MAX_LIST)
    elig_industry_sections: list[str] | None = Field(default=None, max_length=MAX_LIST)
    elig_size_classes: list[SizeClass] | None = Field(default=None, max_length=4)
    min_years_established: int | None = Field(default=None, ge=0, le=100)
    min_revenue_yuan: Yuan | None = None
    max_revenue_yuan: Yuan | None = None
    min_employees: Count | None = None
    min_export_usd: Usd | None = None
    min_patents: Count | None = None
    requires_high_tech: bool | None = None
    requires_specialized_sme: bool | None = None
    requires_gov_procurement: bool | None = None
    requires_receivables: bool | None = None
    requires_green: bool | None = None
    requires_first_loan: bool | None = None
    min_credit_rating: CreditRating | None = None

    @field_validator("elig_town_codes")
    @classmethod
    def _towns(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else valid_town_codes(value)

    @field_validator("elig_industry_sections")
    @classmethod
    def _sections(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else valid_sections(value)


class Product(SQLModel, table=True):
    __tablename__ = "product"
    __table_args__ = (sa.Index("ix_product_active_category", "active", "category"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    institution_id: int = Field(foreign_key="institution.id", sa_type=BigId, index=True)
    name: str = Field(max_length=200)
    category: str = Field(max_length=32)
    description: str = Field(default="", sa_type=sa.Text)
    active: bool = True
    amount_min_yuan: int = Field(sa_type=sa.BigInteger)
    amount_max_yuan: int = Field(sa_type=sa.BigInteger)
    term_min_months: int
    term_max_months: int
    rate_min_bp: int
    rate_max_bp: int
    guarantee_fee_bp: int = 0
    interest_subsidy_pct: int = 0
    interest_subsidy_cap_yuan: int = Field(default=0, sa_type=sa.BigInteger)
    collateral_kind: str = Field(default="none", max_length=32)
    amount_cap_basis: str = Field(default="none", max_length=32)
    amount_cap_pct: int = 100
    elig_town_codes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    elig_industry_sections: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    elig_size_classes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    min_years_established: int | None = None
    min_revenue_yuan: int | None = Field(default=None, sa_type=sa.BigInteger)
    max_revenue_yuan: int | None = Field(default=None, sa_type=sa.BigInteger)
    min_employees: int | None = None
    min_export_usd: int | None = Field(default=None, sa_type=sa.BigInteger)
    min_patents: int | None = None
    requires_high_tech: bool = False
    requires_specialized_sme: bool = False
    requires_gov_procurement: bool = False
    requires_receivables: bool = False
    requires_green: bool = False
    requires_first_loan: bool = False
    min_credit_rating: str | None = Field(default=None, max_length=3)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # Deleting a product that has applications archives it: the history keeps its terms.
    archived_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    version: int = 1


class ProductPublic(ProductTerms, Eligibility):
    id: int
    institution_id: int
    name: str
    category: ProductCategory
    description: str
    active: bool
    created_at: datetime
    updated_at: datetime
    version: int


def product_snapshot(product: Product) -> dict[str, Any]:
    """The product's terms and rules as the firm applied: training must not see later edits."""
    keys = set(ProductTerms.model_fields) | set(Eligibility.model_fields) | {"category"}
    snap = {key: getattr(product, key) for key in sorted(keys)}
    snap["id"] = product.id
    snap["institution_id"] = product.institution_id
    return snap
