"""Columnar (numpy) views of products and firms, built once and shared by rules, costs and model.

Everything downstream is vectorised over these columns: one firm against every product, or a
chunk of firms against every product, never a Python loop per pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from shared.enums import AmountCapBasis, CollateralKind, CreditRating
from shared.schemas.firm import FirmFeatures
from shared.schemas.product import ProductFeatures
from shared.vocab.categories import ProductCategory
from shared.vocab.industries import SECTIONS
from shared.vocab.size_class import SizeClass
from shared.vocab.towns import TOWNS

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

CATEGORIES: tuple[ProductCategory, ...] = tuple(ProductCategory)
COLLATERAL_KINDS: tuple[CollateralKind, ...] = tuple(CollateralKind)
CAP_BASES: tuple[AmountCapBasis, ...] = tuple(AmountCapBasis)
TOWN_CODES: tuple[str, ...] = tuple(t.code for t in TOWNS)
SECTION_LETTERS: tuple[str, ...] = tuple(s.letter for s in SECTIONS)
SIZE_CLASSES: tuple[SizeClass, ...] = (
    SizeClass.MICRO,
    SizeClass.SMALL,
    SizeClass.MEDIUM,
    SizeClass.LARGE,
)
FLAG_RULES: tuple[str, ...] = (
    "requires_high_tech",
    "requires_specialized_sme",
    "requires_gov_procurement",
    "requires_receivables",
    "requires_green",
    "requires_first_loan",
)


def _index(values: Sequence[str], vocabulary: Sequence[str]) -> Ints:
    lookup = {v: i for i, v in enumerate(vocabulary)}
    return np.fromiter((lookup[str(v)] for v in values), dtype=np.int64, count=len(values))


def _optional(values: Sequence[int | None]) -> Floats:
    """None becomes NaN: "no threshold" fails no comparison below (NaN compares False)."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _membership(allowed: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> Bools:
    """allowed[j] as a row of booleans over the vocabulary; an empty list allows everything."""
    out = np.ones((len(allowed), len(vocabulary)), dtype=np.bool_)
    lookup = {v: i for i, v in enumerate(vocabulary)}
    for j, values in enumerate(allowed):
        if values:
            out[j] = False
            out[j, [lookup[str(v)] for v in values]] = True
    return out


def rating_rank(rating: CreditRating | str | None) -> int:
    """0 for unrated (fails any rating floor), 1 (C) … 7 (AAA)."""
    return 0 if rating is None else CreditRating(rating).rank


@dataclass(frozen=True)
class ProductTable:
    products: tuple[ProductFeatures, ...]
    ids: Ints
    institution_ids: Ints
    category: Ints
    amount_min: Floats
    amount_max: Floats
    term_min: Floats
    term_max: Floats
    rate_min_bp: Floats
    rate_max_bp: Floats
    guarantee_fee_bp: Floats
    subsidy_pct: Floats
    subsidy_cap: Floats
    collateral_kind: Ints
    cap_basis: Ints
    cap_pct: Floats
    town_allowed: Bools  # n × towns
    section_allowed: Bools  # n × sections
    size_allowed: Bools  # n × size classes
    town_restricted: Bools
    section_restricted: Bools
    size_restricted: Bools
    min_years: Floats
    min_revenue: Floats
    max_revenue: Floats
    min_employees: Floats
    min_export_usd: Floats
    min_patents: Floats
    requires: Bools  # n × FLAG_RULES
    min_rating_rank: Floats  # NaN when no floor

    @property
    def n(self) -> int:
        return len(self.products)

    @classmethod
    def from_products(cls, products: Sequence[ProductFeatures]) -> ProductTable:
        p = tuple(products)
        return cls(
            products=p,
            ids=np.array([x.id for x in p], dtype=np.int64),
            institution_ids=np.array([x.institution_id for x in p], dtype=np.int64),
            category=_index([x.category for x in p], CATEGORIES),
            amount_min=np.array([x.amount_min_yuan for x in p], dtype=np.float64),
            amount_max=np.array([x.amount_max_yuan for x in p], dtype=np.float64),
            term_min=np.array([x.term_min_months for x in p], dtype=np.float64),
            term_max=np.array([x.term_max_months for x in p], dtype=np.float64),
            rate_min_bp=np.array([x.rate_min_bp for x in p], dtype=np.float64),
            rate_max_bp=np.array([x.rate_max_bp for x in p], dtype=np.float64),
            guarantee_fee_bp=np.array([x.guarantee_fee_bp for x in p], dtype=np.float64),
            subsidy_pct=np.array([x.interest_subsidy_pct for x in p], dtype=np.float64),
            subsidy_cap=np.array([x.interest_subsidy_cap_yuan for x in p], dtype=np.float64),
            collateral_kind=_index([x.collateral_kind for x in p], COLLATERAL_KINDS),
            cap_basis=_index([x.amount_cap_basis for x in p], CAP_BASES),
            cap_pct=np.array([x.amount_cap_pct for x in p], dtype=np.float64),
            town_allowed=_membership([x.elig_town_codes for x in p], TOWN_CODES),
            section_allowed=_membership([x.elig_industry_sections for x in p], SECTION_LETTERS),
            size_allowed=_membership([x.elig_size_classes for x in p], SIZE_CLASSES),
            town_restricted=np.array([bool(x.elig_town_codes) for x in p], dtype=np.bool_),
            section_restricted=np.array(
                [bool(x.elig_industry_sections) for x in p], dtype=np.bool_
            ),
            size_restricted=np.array([bool(x.elig_size_classes) for x in p], dtype=np.bool_),
            min_years=_optional([x.min_years_established for x in p]),
            min_revenue=_optional([x.min_revenue_yuan for x in p]),
            max_revenue=_optional([x.max_revenue_yuan for x in p]),
            min_employees=_optional([x.min_employees for x in p]),
            min_export_usd=_optional([x.min_export_usd for x in p]),
            min_patents=_optional([x.min_patents for x in p]),
            requires=np.array(
                [[bool(getattr(x, rule)) for rule in FLAG_RULES] for x in p], dtype=np.bool_
            ).reshape(len(p), len(FLAG_RULES)),
            min_rating_rank=_optional(
                [
                    None if x.min_credit_rating is None else rating_rank(x.min_credit_rating)
                    for x in p
                ]
            ),
        )


@dataclass(frozen=True)
class FirmTable:
    """m firms as columns; ``as_of`` fixes their age (training uses each application's date)."""

    town: Ints
    section: Ints
    size: Ints
    years: Floats
    employees: Floats
    revenue: Floats
    assets: Floats
    export_usd: Floats
    invention_patents: Floats
    utility_patents: Floats
    trademarks: Floats
    procurement: Floats
    receivables: Floats
    collateral_real_estate: Floats
    collateral_equipment: Floats
    rating_rank: Floats
    has: Bools  # m × FLAG_RULES: what each firm has of the flags products may require
    need_amount: Floats  # NaN when not stated
    need_term: Floats

    @property
    def m(self) -> int:
        return len(self.town)

    @property
    def patents(self) -> Floats:
        return self.invention_patents + self.utility_patents

    @classmethod
    def from_firms(cls, firms: Sequence[FirmFeatures], as_of: date | Sequence[date]) -> FirmTable:
        f = list(firms)
        dates = [as_of] * len(f) if isinstance(as_of, date) else list(as_of)
        years = [
            max(0.0, (d - x.established_on).days / 365.25) for x, d in zip(f, dates, strict=True)
        ]

        def col(name: str) -> Floats:
            return np.array([getattr(x, name) for x in f], dtype=np.float64)

        has = np.array(
            [
                [
                    x.is_high_tech,
                    x.is_specialized_sme,
                    x.gov_procurement_contracts_yuan > 0,
                    x.core_enterprise_receivables_yuan > 0,
                    x.is_green_listed,
                    not x.has_borrowed_before,
                ]
                for x in f
            ],
            dtype=np.bool_,
        ).reshape(len(f), len(FLAG_RULES))
        return cls(
            town=_index([x.town_code for x in f], TOWN_CODES),
            section=_index([x.industry_section for x in f], SECTION_LETTERS),
            size=_index([x.size_class for x in f], SIZE_CLASSES),
            years=np.array(years, dtype=np.float64),
            employees=col("employees"),
            revenue=col("annual_revenue_yuan"),
            assets=col("total_assets_yuan"),
            export_usd=col("export_revenue_usd"),
            invention_patents=col("invention_patents"),
            utility_patents=col("utility_patents"),
            trademarks=col("trademarks"),
            procurement=col("gov_procurement_contracts_yuan"),
            receivables=col("core_enterprise_receivables_yuan"),
            collateral_real_estate=col("collateral_real_estate_yuan"),
            collateral_equipment=col("collateral_equipment_yuan"),
            rating_rank=np.array([rating_rank(x.credit_rating) for x in f], dtype=np.float64),
            has=has,
            need_amount=_optional([x.need_amount_yuan for x in f]),
            need_term=_optional([x.need_term_months for x in f]),
        )

    def row(self, i: int) -> FirmTable:
        """A one-firm table (views, no copies) for per-firm ranking."""
        sl = slice(i, i + 1)
        return FirmTable(**{k: v[sl] for k, v in self.__dict__.items()})
