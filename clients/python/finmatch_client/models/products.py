"""Products: terms (money in yuan, rates and fees in basis points) and eligibility rules
(empty lists and None mean "no restriction"); their reach among registered firms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from finmatch_client.models._base import Answer, Body
from finmatch_client.models.enums import (
    AmountCapBasis,
    CollateralKind,
    CreditRating,
    ProductCategory,
    SizeClass,
)


class _ProductTerms(BaseModel):
    """The fields a product is listed with, as sent and as answered."""

    name: str
    category: ProductCategory
    description: str = ""
    active: bool = True
    amount_min_yuan: int
    amount_max_yuan: int
    term_min_months: int
    term_max_months: int
    rate_min_bp: int
    rate_max_bp: int
    guarantee_fee_bp: int = 0
    interest_subsidy_pct: int = 0
    interest_subsidy_cap_yuan: int = 0
    collateral_kind: CollateralKind = CollateralKind.NONE
    amount_cap_basis: AmountCapBasis = AmountCapBasis.NONE
    amount_cap_pct: int = 100
    elig_town_codes: list[str] = Field(default_factory=list)
    elig_industry_sections: list[str] = Field(default_factory=list)
    elig_size_classes: list[SizeClass] = Field(default_factory=list)
    min_years_established: int | None = None
    max_years_established: int | None = None
    min_revenue_yuan: int | None = None
    max_revenue_yuan: int | None = None
    min_total_assets_yuan: int | None = None
    min_employees: int | None = None
    min_export_usd: int | None = None
    min_patents: int | None = None
    min_invention_patents: int | None = None
    min_trademarks: int | None = None
    requires_high_tech: bool = False
    requires_specialized_sme: bool = False
    requires_gov_procurement: bool = False
    requires_receivables: bool = False
    requires_green: bool = False
    requires_first_loan: bool = False
    min_credit_rating: CreditRating | None = None
    verified_only: list[str] = Field(default_factory=list)


class ProductCreate(_ProductTerms, Body):
    """A product to list."""


class ProductUpdate(Body):
    """A partial update: only the fields you set are sent."""

    name: str | None = None
    category: ProductCategory | None = None
    description: str | None = None
    active: bool | None = None
    amount_min_yuan: int | None = None
    amount_max_yuan: int | None = None
    term_min_months: int | None = None
    term_max_months: int | None = None
    rate_min_bp: int | None = None
    rate_max_bp: int | None = None
    guarantee_fee_bp: int | None = None
    interest_subsidy_pct: int | None = None
    interest_subsidy_cap_yuan: int | None = None
    collateral_kind: CollateralKind | None = None
    amount_cap_basis: AmountCapBasis | None = None
    amount_cap_pct: int | None = None
    elig_town_codes: list[str] | None = None
    elig_industry_sections: list[str] | None = None
    elig_size_classes: list[SizeClass] | None = None
    min_years_established: int | None = None
    max_years_established: int | None = None
    min_revenue_yuan: int | None = None
    max_revenue_yuan: int | None = None
    min_total_assets_yuan: int | None = None
    min_employees: int | None = None
    min_export_usd: int | None = None
    min_patents: int | None = None
    min_invention_patents: int | None = None
    min_trademarks: int | None = None
    requires_high_tech: bool | None = None
    requires_specialized_sme: bool | None = None
    requires_gov_procurement: bool | None = None
    requires_receivables: bool | None = None
    requires_green: bool | None = None
    requires_first_loan: bool | None = None
    min_credit_rating: CreditRating | None = None
    verified_only: list[str] | None = None


class ProductPublic(_ProductTerms, Answer):
    """A product as listed; ``version`` is its ETag (send it back to update)."""

    id: int
    institution_id: int
    created_at: datetime
    updated_at: datetime
    version: int


class ReachCell(Answer):
    key: str
    label_zh: str
    label_en: str
    firms: int | None
    suppressed: bool


class ReachCriterion(Answer):
    """One rule the product sets, and what one notch easier would add."""

    criterion: str
    label_zh: str
    label_en: str
    setting: Any
    relaxed_to: Any  # one notch easier; None: the rule dropped
    additional_firms: int | None
    binding: bool
    suppressed: bool


class ProductReach(Answer):
    """Whom a product would reach among registered firms with consent and a need; aggregates
    only (groups of fewer than 3 firms are withheld)."""

    product_id: int | None
    town_code: str | None
    as_of: str
    model_version: str
    is_prior: bool
    firms_considered: int
    eligible: int | None
    expected_approval_share: float | None
    # ± this (99.9%) when the share is a sample's; 0 when every eligible firm was scored.
    expected_approval_share_margin: float | None
    expected_approval_share_scored: int | None  # eligible firms the model scored
    by_town: list[ReachCell]
    by_size_class: list[ReachCell]
    criteria: list[ReachCriterion]
