"""Product terms and eligibility rules, shared by the registry and the matching service.

Money is integer yuan; rates and fees are basis points. Empty lists and None mean "no
restriction".
"""

from __future__ import annotations

from pydantic import field_validator, model_validator
from sqlmodel import Field, SQLModel

from shared.enums import AmountCapBasis, CollateralKind, CreditRating
from shared.errors import invalid_fields
from shared.types import Count, FeeBp, Percent, PositiveYuan, RateBp, TermMonths, Usd, Yuan
from shared.vocab.categories import ProductCategory
from shared.vocab.industries import SECTIONS_BY_LETTER
from shared.vocab.size_class import SizeClass
from shared.vocab.towns import is_town_code

MAX_LIST = 64  # more towns/sections than exist: a longer list is a client bug


def valid_town_codes(codes: list[str]) -> list[str]:
    for code in codes:
        if not is_town_code(code):
            raise ValueError(f"unknown town code {code!r}")
    return sorted(set(codes))


def valid_sections(letters: list[str]) -> list[str]:
    out = {s.strip().upper() for s in letters}
    for letter in out:
        if letter not in SECTIONS_BY_LETTER:
            raise ValueError(f"unknown industry section {letter!r}")
    return sorted(out)


class Eligibility(SQLModel):
    """Hard rules a firm must meet; empty lists and None mean "no restriction"."""

    elig_town_codes: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    elig_industry_sections: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    elig_size_classes: list[SizeClass] = Field(default_factory=list, max_length=4)
    min_years_established: int | None = Field(default=None, ge=0, le=100)
    min_revenue_yuan: Yuan | None = None
    max_revenue_yuan: Yuan | None = None
    min_employees: Count | None = None
    min_export_usd: Usd | None = None
    min_patents: Count | None = Field(default=None, description="invention + utility patents")
    requires_high_tech: bool = False
    requires_specialized_sme: bool = False
    requires_gov_procurement: bool = False
    requires_receivables: bool = False
    requires_green: bool = False
    requires_first_loan: bool = Field(default=False, description="only firms never borrowed")
    min_credit_rating: CreditRating | None = None

    @field_validator("elig_town_codes")
    @classmethod
    def _towns(cls, value: list[str]) -> list[str]:
        return valid_town_codes(value)

    @field_validator("elig_industry_sections")
    @classmethod
    def _sections(cls, value: list[str]) -> list[str]:
        return valid_sections(value)


class ProductTerms(SQLModel):
    """Price and size of a product; money in yuan, rates and fees in basis points."""

    amount_min_yuan: PositiveYuan
    amount_max_yuan: PositiveYuan
    term_min_months: TermMonths
    term_max_months: TermMonths
    rate_min_bp: RateBp
    rate_max_bp: RateBp
    guarantee_fee_bp: FeeBp = 0
    interest_subsidy_pct: Percent = Field(default=0, description="share of interest subsidised")
    interest_subsidy_cap_yuan: Yuan = Field(
        default=0, description="subsidy cap per firm and year; 0 means no cap"
    )
    collateral_kind: CollateralKind = CollateralKind.NONE
    amount_cap_basis: AmountCapBasis = AmountCapBasis.NONE
    amount_cap_pct: Percent = Field(default=100, description="loan ≤ this % of the cap basis")


def check_ranges(obj: SQLModel) -> None:
    pairs = (
        ("amount_min_yuan", "amount_max_yuan"),
        ("term_min_months", "term_max_months"),
        ("rate_min_bp", "rate_max_bp"),
        ("min_revenue_yuan", "max_revenue_yuan"),
    )
    for low_name, high_name in pairs:
        low, high = getattr(obj, low_name, None), getattr(obj, high_name, None)
        if low is not None and high is not None and low > high:
            reason = f"{low_name} ({low}) is greater than {high_name} ({high})"
            raise invalid_fields(
                type(obj).__name__,
                {low_name: reason, high_name: reason},
                {low_name: low, high_name: high},
            )


class ProductFeatures(ProductTerms, Eligibility):
    """A product as the matching service ranks it."""

    id: int = Field(ge=1, le=2**63 - 1)
    institution_id: int = Field(ge=1, le=2**63 - 1)
    category: ProductCategory
    name: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _ranges(self) -> ProductFeatures:
        check_ranges(self)
        return self
