"""Columnar (numpy) views of products and firms, built once and shared by rules, costs and model.

Everything downstream is vectorised over these columns: one firm against every product, or a
chunk of firms against every product, never a Python loop per pair.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from shared.criteria import (
    CRITERIA,
    CRITERION_CODES,
    Comparison,
    Unit,
    combine,
    field_number,
    setting_number,
)
from shared.enums import AmountCapBasis, CollateralKind
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
# The flags a product may require, in registry order; FirmTable.has holds them per firm.
FLAG_RULES: tuple[str, ...] = tuple(c.code for c in CRITERIA if c.compare is Comparison.REQUIRED)
_FLAG_COLUMNS = np.array([i for i, c in enumerate(CRITERIA) if c.compare is Comparison.REQUIRED])
# FirmFeatures fields kept as FirmTable columns, by the column's name.
FIELD_COLUMNS = {
    "established_on": "years",
    "employees": "employees",
    "annual_revenue_yuan": "revenue",
    "total_assets_yuan": "assets",
    "export_revenue_usd": "export_usd",
    "invention_patents": "invention_patents",
    "utility_patents": "utility_patents",
    "trademarks": "trademarks",
    "gov_procurement_contracts_yuan": "procurement",
    "core_enterprise_receivables_yuan": "receivables",
    "collateral_real_estate_yuan": "collateral_real_estate",
    "collateral_equipment_yuan": "collateral_equipment",
    "credit_rating": "rating_rank",
}
# Per criterion: the FirmFeatures field an official register verifies (None: none does).
_REGISTERED = tuple(c.firm_fields[0] if c.register is not None else None for c in CRITERIA)
# What a list criterion's codes index into.
VOCABULARIES: dict[Unit, tuple[str, ...]] = {
    Unit.TOWN: TOWN_CODES,
    Unit.SECTION: SECTION_LETTERS,
    Unit.SIZE: SIZE_CLASSES,
}


def _index(values: Sequence[str], vocabulary: Sequence[str]) -> Ints:
    lookup = {v: i for i, v in enumerate(vocabulary)}
    return np.fromiter((lookup[str(v)] for v in values), dtype=np.int64, count=len(values))


def _optional(values: Sequence[float | None]) -> Floats:
    """None becomes NaN: "no threshold" fails no comparison (NaN compares False)."""
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


def _settings(products: Sequence[ProductFeatures]) -> Floats:
    columns = [
        _optional([1.0 if getattr(x, c.code) else None for x in products])
        if c.is_list
        else _optional([setting_number(c, getattr(x, c.code)) for x in products])
        for c in CRITERIA
    ]
    out: Floats = np.stack(columns, axis=1) if products else np.zeros((0, len(CRITERIA)))
    return out


def verified_criteria(fields: Collection[str]) -> Bools:
    """Per criterion: whether the firm's value comes from an official register, given the
    firm fields that do (a criterion no register verifies is never verified)."""
    return np.array([f is not None and f in fields for f in _REGISTERED], dtype=np.bool_)


def _verified_only(products: Sequence[ProductFeatures], settings: Floats) -> Bools:
    """n × CRITERIA: the criteria each product sets and accepts only from a register."""
    out = np.zeros((len(products), len(CRITERIA)), dtype=np.bool_)
    for j, product in enumerate(products):
        for code in product.verified_only:
            out[j, CRITERION_CODES.index(code)] = True
    with np.errstate(invalid="ignore"):
        out &= ~np.isnan(settings)  # a rule the product does not set asks nothing
    return out


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
    # n × CRITERIA: each criterion's setting as the number firm values compare with (NaN where
    # the product does not set it; 1 for a required flag or a restricting list).
    settings: Floats
    # For each list criterion: n × its vocabulary, what each product allows (all when unset).
    allowed: dict[str, Bools]
    # n × CRITERIA: the criteria a product sets and accepts only from an official register.
    verified_only: Bools

    @property
    def n(self) -> int:
        return len(self.products)

    @classmethod
    def from_products(cls, products: Sequence[ProductFeatures]) -> ProductTable:
        p = tuple(products)
        settings = _settings(p)
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
            settings=settings,
            allowed={
                c.code: _membership([getattr(x, c.code) for x in p], VOCABULARIES[c.unit])
                for c in CRITERIA
                if c.is_list
            },
            verified_only=_verified_only(p, settings),
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
    # m × CRITERIA: the firm's value each criterion compares (a list criterion's: the index of
    # its code in the vocabulary), read from the firm as the criterion registry says.
    values: Floats
    need_amount: Floats  # NaN when not stated
    need_term: Floats
    # m × CRITERIA: whether the firm's value of each criterion comes from an official register
    # (what a product's verified_only criteria accept); a declared value is not.
    verified: Bools

    @property
    def m(self) -> int:
        return len(self.town)

    @property
    def patents(self) -> Floats:
        return self.invention_patents + self.utility_patents

    def field(self, name: str) -> Floats:
        """The column of a FirmFeatures field (a date: the years since; a rating: its rank)."""
        column: Floats = getattr(self, FIELD_COLUMNS[name])
        return column

    @property
    def has(self) -> Bools:
        """m × FLAG_RULES: which of the flags products may require each firm holds."""
        held: Bools = self.values[:, _FLAG_COLUMNS] > 0
        return held

    @classmethod
    def from_firms(
        cls,
        firms: Sequence[FirmFeatures],
        as_of: date | Sequence[date],
        verified: Sequence[Collection[str]] | None = None,
    ) -> FirmTable:
        """``verified``: per firm, its fields an official register gives (see VerifiedFields);
        None: every value as declared."""
        f = list(firms)
        dates = [as_of] * len(f) if isinstance(as_of, date) else list(as_of)
        numbers: dict[str, Floats] = {}

        def col(name: str) -> Floats:
            if name not in numbers:
                numbers[name] = np.array(
                    [
                        field_number(name, getattr(x, name), d)
                        for x, d in zip(f, dates, strict=True)
                    ],
                    dtype=np.float64,
                ).reshape(len(f))
            return numbers[name]

        codes = {
            c.firm_fields[0]: _index(
                [getattr(x, c.firm_fields[0]) for x in f], VOCABULARIES[c.unit]
            )
            for c in CRITERIA
            if c.is_list
        }
        values = [
            codes[c.firm_fields[0]].astype(np.float64)
            if c.is_list
            else np.asarray(combine(c, [col(name) for name in c.firm_fields]), dtype=np.float64)
            for c in CRITERIA
        ]
        return cls(
            town=codes["town_code"],
            section=codes["industry_section"],
            size=codes["size_class"],
            **{column: col(field) for field, column in FIELD_COLUMNS.items()},
            values=np.stack(values, axis=1).reshape(len(f), len(CRITERIA)),
            need_amount=_optional([x.need_amount_yuan for x in f]),
            need_term=_optional([x.need_term_months for x in f]),
            verified=(
                np.zeros((len(f), len(CRITERIA)), dtype=np.bool_)
                if verified is None
                else np.array([verified_criteria(v) for v in verified], dtype=np.bool_).reshape(
                    len(f), len(CRITERIA)
                )
            ),
        )

    def row(self, i: int) -> FirmTable:
        """A one-firm table (views, no copies) for per-firm ranking."""
        sl = slice(i, i + 1)
        return FirmTable(**{k: v[sl] for k, v in self.__dict__.items()})
