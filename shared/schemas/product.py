"""Products: every field declared once, for the API, the registry's table and matching.

``ProductBase`` holds what an institution sets: terms (``ProductTerms``) and eligibility rules
(``Eligibility``, one field per entry of the criterion registry, described by it). The
registry's table inherits these fields (each carries the column type it needs); the API's
``ProductCreate``, ``ProductUpdate`` (derived: every field optional) and ``ProductPublic``, and
matching's ``ProductFeatures``, are built on them too.

Money is integer yuan; rates and fees are basis points. Empty lists and None mean "no
restriction".
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Strict, field_validator, model_validator
from pydantic import Field as ValueField
from sqlmodel import AutoString, Field, SQLModel

from shared.criteria import CRITERIA_BY_CODE, CRITERION_CODES, RANGE_PAIRS, Comparison, Unit
from shared.enums import AmountCapBasis, CollateralKind, CreditRating
from shared.errors import invalid_fields
from shared.schemas.page import CURSOR_DESCRIPTION, CursorText
from shared.schemas.partial import partial_model
from shared.types import (
    Count,
    FeeBp,
    Flag,
    LongText,
    Name,
    Percent,
    PositiveYuan,
    RateBp,
    SafeStr,
    TermMonths,
    Usd,
    Yuan,
)
from shared.vocab.categories import ProductCategory
from shared.vocab.industries import SECTIONS_BY_LETTER
from shared.vocab.size_class import SizeClass
from shared.vocab.towns import TOWNS_BY_CODE, is_town_code

MAX_LIST = 64  # more towns/sections than exist: a longer list is a client bug
Years = Annotated[int, Strict(), Field(ge=0, le=100, description="whole years")]
_BIG_UNITS = (Unit.YUAN, Unit.USD)
# What a list item may be, stated in the schema (the validators below enforce it).
TownCodeItem = Annotated[str, ValueField(json_schema_extra={"enum": sorted(TOWNS_BY_CODE)})]
SectionItem = Annotated[
    str, ValueField(json_schema_extra={"pattern": "^[A-Ta-t]$", "examples": ["C"]})
]


def criterion_field(code: str, **constraints: Any) -> Any:
    """The product field that sets criterion ``code``: its default (no restriction), the
    registry's description, and the column type the table needs."""
    criterion = CRITERIA_BY_CODE[code]
    if criterion.is_list:
        return Field(
            default_factory=list, sa_type=sa.JSON, description=criterion.description, **constraints
        )
    if criterion.compare is Comparison.REQUIRED:
        return Field(default=False, description=criterion.description)
    if criterion.compare is Comparison.RATING:
        return Field(default=None, sa_type=AutoString(length=3), description=criterion.description)
    sa_type = sa.BigInteger if criterion.unit in _BIG_UNITS else sa.Integer
    return Field(default=None, sa_type=sa_type, description=criterion.description)


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
    """Hard rules a firm must meet, one field per registered criterion (shared/criteria/)."""

    elig_town_codes: list[TownCodeItem] = criterion_field("elig_town_codes", max_length=MAX_LIST)
    elig_industry_sections: list[SectionItem] = criterion_field(
        "elig_industry_sections", max_length=MAX_LIST
    )
    elig_size_classes: list[SizeClass] = criterion_field("elig_size_classes", max_length=4)
    min_years_established: Years | None = criterion_field("min_years_established")
    max_years_established: Years | None = criterion_field("max_years_established")
    min_revenue_yuan: Yuan | None = criterion_field("min_revenue_yuan")
    max_revenue_yuan: Yuan | None = criterion_field("max_revenue_yuan")
    min_total_assets_yuan: Yuan | None = criterion_field("min_total_assets_yuan")
    min_employees: Count | None = criterion_field("min_employees")
    min_export_usd: Usd | None = criterion_field("min_export_usd")
    min_patents: Count | None = criterion_field("min_patents")
    min_invention_patents: Count | None = criterion_field("min_invention_patents")
    min_trademarks: Count | None = criterion_field("min_trademarks")
    requires_high_tech: Flag = criterion_field("requires_high_tech")
    requires_specialized_sme: Flag = criterion_field("requires_specialized_sme")
    requires_gov_procurement: Flag = criterion_field("requires_gov_procurement")
    requires_receivables: Flag = criterion_field("requires_receivables")
    requires_green: Flag = criterion_field("requires_green")
    requires_first_loan: Flag = criterion_field("requires_first_loan")
    min_credit_rating: CreditRating | None = criterion_field("min_credit_rating")

    @field_validator("elig_town_codes")
    @classmethod
    def _towns(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else valid_town_codes(value)

    @field_validator("elig_industry_sections")
    @classmethod
    def _sections(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else valid_sections(value)


# A criterion in the registry without its field here (or the reverse) would be a rule nobody
# can set, or a field no rule reads: refuse to start.
if set(Eligibility.model_fields) != set(CRITERION_CODES):  # pragma: no cover - a wiring bug
    raise RuntimeError(
        "product eligibility fields and criterion registry differ: "
        f"{sorted(set(Eligibility.model_fields) ^ set(CRITERION_CODES))}"
    )


def _verifiable(codes: list[str]) -> list[str]:
    for code in codes:
        criterion = CRITERIA_BY_CODE.get(code)
        if criterion is None:
            raise ValueError(f"unknown criterion {code!r}")
        if criterion.register is None:
            raise ValueError(
                f"{code} has no official register to verify it: only "
                f"{', '.join(VERIFIABLE_CRITERIA)} can be verified_only"
            )
    return sorted(set(codes))


# The criteria an official register can verify (shared/criteria: ``Criterion.register``).
VERIFIABLE_CRITERIA: tuple[str, ...] = tuple(
    code for code in CRITERION_CODES if CRITERIA_BY_CODE[code].register is not None
)


# A criterion that verified_only may name, stated in the schema (_verifiable enforces it).
VerifiableItem = Annotated[str, ValueField(json_schema_extra={"enum": list(VERIFIABLE_CRITERIA)})]


class Verification(SQLModel):
    """Which of a product's criteria only an official register's value satisfies."""

    verified_only: list[VerifiableItem] = Field(
        default_factory=list,
        sa_type=sa.JSON,
        max_length=MAX_LIST,
        description="criteria (of "
        + ", ".join(VERIFIABLE_CRITERIA)
        + ") a firm meets only by an official register's value, never by its portal's "
        "declaration alone; each must be one the product sets",
    )

    @field_validator("verified_only")
    @classmethod
    def _verifiable_codes(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _verifiable(value)


def check_verified_only(obj: SQLModel) -> None:
    """Every criterion a product marks verified_only is one it sets (else 422 naming it)."""
    unset = [code for code in getattr(obj, "verified_only", None) or [] if not getattr(obj, code)]
    if unset:
        reason = f"verified_only names {', '.join(unset)}, which the product does not require"
        raise invalid_fields(
            type(obj).__name__, {"verified_only": reason}, {"verified_only": unset}
        )


class ProductTerms(SQLModel):
    """Price and size of a product; money in yuan, rates and fees in basis points."""

    amount_min_yuan: PositiveYuan = Field(sa_type=sa.BigInteger)
    amount_max_yuan: PositiveYuan = Field(sa_type=sa.BigInteger)
    term_min_months: TermMonths
    term_max_months: TermMonths
    rate_min_bp: RateBp
    rate_max_bp: RateBp
    guarantee_fee_bp: FeeBp = 0
    interest_subsidy_pct: Percent = Field(default=0, description="share of interest subsidised")
    interest_subsidy_cap_yuan: Yuan = Field(
        default=0, sa_type=sa.BigInteger, description="subsidy cap per firm and year; 0: no cap"
    )
    collateral_kind: CollateralKind = Field(
        default=CollateralKind.NONE, sa_type=AutoString(length=32)
    )
    amount_cap_basis: AmountCapBasis = Field(
        default=AmountCapBasis.NONE, sa_type=AutoString(length=32)
    )
    amount_cap_pct: Percent = Field(default=100, description="loan ≤ this % of the cap basis")


RANGES: tuple[tuple[str, str], ...] = (
    ("amount_min_yuan", "amount_max_yuan"),
    ("term_min_months", "term_max_months"),
    ("rate_min_bp", "rate_max_bp"),
    *RANGE_PAIRS,
)


def check_ranges(obj: SQLModel) -> None:
    """Every (low, high) pair of fields both set has low ≤ high; the error names both."""
    for low_name, high_name in RANGES:
        low, high = getattr(obj, low_name, None), getattr(obj, high_name, None)
        if low is not None and high is not None and low > high:
            reason = f"{low_name} ({low}) is greater than {high_name} ({high})"
            raise invalid_fields(
                type(obj).__name__,
                {low_name: reason, high_name: reason},
                {low_name: low, high_name: high},
            )


class ProductBase(ProductTerms, Eligibility, Verification):
    """What an institution sets for a product."""

    name: Name = Field(sa_type=AutoString(length=200))
    category: ProductCategory = Field(sa_type=AutoString(length=32))
    description: LongText = Field(default="", sa_type=sa.Text)
    active: Flag = True


class ProductCreate(ProductBase):
    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _ranges(self) -> ProductCreate:
        check_ranges(self)
        check_verified_only(self)
        return self


class ProductUpdate(partial_model(ProductCreate)):  # type: ignore[misc]
    """Partial update of a product: ProductCreate's fields, each optional (derived, not copied,
    so a field added to the product is patchable at once). The registry re-checks the merged
    product, ranges included, against the stored values."""


class ProductPublic(ProductBase):
    id: int
    institution_id: int
    created_at: datetime
    updated_at: datetime
    version: int


class ProductFeatures(ProductTerms, Eligibility, Verification):
    """A product as the matching service ranks it."""

    id: int = Field(ge=1, le=2**63 - 1)
    institution_id: int = Field(ge=1, le=2**63 - 1)
    category: ProductCategory
    name: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _ranges(self) -> ProductFeatures:
        check_ranges(self)
        return self


class ProductQuery(BaseModel):
    """The filters of GET /v1/products (the gateway passes them on to the registry as given)."""

    limit: int = Field(default=100, ge=1, le=5000)
    cursor: CursorText | None = Field(default=None, description=CURSOR_DESCRIPTION)
    category: ProductCategory | None = None
    institution_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    town_code: SafeStr | None = Field(default=None, max_length=9)
    include_inactive: bool = Field(
        default=False, description="the owning institution's (or an admin's) inactive ones too"
    )
