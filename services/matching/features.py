"""Pair features for the approval model: one vectorised function for training, serving and batch."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from services.matching.eligibility import PairEligibility
from services.matching.tables import (
    CAP_BASES,
    CATEGORIES,
    COLLATERAL_KINDS,
    FLAG_RULES,
    SIZE_CLASSES,
    FirmTable,
    Floats,
    Ints,
    ProductTable,
)
from shared.enums import AmountCapBasis, CollateralKind
from shared.types import YUAN_PER_USD
from shared.vocab.categories import ProductCategory

# Assumptions of ours, not sourced: one fixed exchange rate for export caps (shared.types), and
# rough pledge values per patent (a bank's valuation varies widely; only the order of
# magnitude matters inside a clipped log).
USD_TO_CNY = float(YUAN_PER_USD)
PLEDGE_VALUE_INVENTION_YUAN = 500_000.0
PLEDGE_VALUE_UTILITY_YUAN = 100_000.0
# Logs of ratios are clipped so that a zero revenue or a 10^13 yuan typo stays finite and
# cannot dominate a linear model; e^6 ≈ 400x covers every ratio that still means something.
LOG_CLIP = 6.0
MAX_LEVERAGE = 5.0

_C = ProductCategory
_TRADE = (_C.GUANMAOTONG, _C.CREDIT_INSURANCE_GUARANTEE)
_TECH = (_C.TECH_CREDIT, _C.INVEST_LOAN_GUARANTEE)
# Collateral kinds whose value we can read off the firm; others (pure credit, guarantees,
# insurance policies, carbon quotas) are judged on the firm alone.
_SECURED = (
    CollateralKind.REAL_ESTATE,
    CollateralKind.EQUIPMENT,
    CollateralKind.INTELLECTUAL_PROPERTY,
    CollateralKind.RECEIVABLES,
    CollateralKind.PROCUREMENT_CONTRACT,
)

_IP_KIND = COLLATERAL_KINDS.index(CollateralKind.INTELLECTUAL_PROPERTY)
_HIGH_TECH = FLAG_RULES.index("requires_high_tech")
_SPECIALIZED = FLAG_RULES.index("requires_specialized_sme")
_NEVER_BORROWED = FLAG_RULES.index("requires_first_loan")

_SPEC: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("revenue_to_amount", ("log_revenue_to_amount",)),
    ("leverage", ("amount_to_assets", "log_amount_to_assets", "amount_over_assets")),
    (
        "collateral_coverage",
        (
            "secured",
            "secured_x_log_collateral_to_amount",
            "ip_pledge_x_log_patent_value_to_amount",
        ),
    ),
    ("years", ("log1p_years",)),
    ("rating", ("rating_rank", "rated")),
    ("size", tuple(f"size_{s.value}" for s in SIZE_CLASSES)),
    (
        "exports",
        ("exporter", "log_export_musd", "trade_x_log_export_musd", "trade_x_non_exporter"),
    ),
    (
        "innovation",
        (
            "log1p_invention_patents",
            "log1p_utility_patents",
            "high_tech",
            "specialized_sme",
            "tech_x_high_tech",
            "tech_x_specialized_sme",
            "tech_x_log1p_invention_patents",
            "ip_pledge_x_log1p_patents",
        ),
    ),
    ("first_loan", ("never_borrowed", "never_borrowed_x_first_loan")),
    ("term", ("term_years", "term_years_over_3")),
    ("amount_cap", ("has_cap", "has_cap_x_log_amount_to_cap", "over_cap")),
    ("amount", ("log_amount",)),
    ("category", tuple(f"category_{c.value}" for c in CATEGORIES)),
    (
        "product_terms",
        (
            *(f"collateral_{k.value}" for k in COLLATERAL_KINDS),
            "rate_min_pct",
            "rate_max_pct",
            "guarantee_fee_pct",
            "subsidy_share",
        ),
    ),
    ("eligibility", ("unmet_criteria", "eligible")),
)

FEATURE_NAMES: tuple[str, ...] = tuple(name for _, names in _SPEC for name in names)
COLUMN = MappingProxyType({name: i for i, name in enumerate(FEATURE_NAMES)})


def _groups() -> Mapping[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for group, names in _SPEC:
        out[group] = tuple(COLUMN[name] for name in names)
    return MappingProxyType(out)


FEATURE_GROUPS: Mapping[str, tuple[int, ...]] = _groups()
GROUP_NAMES: tuple[str, ...] = tuple(FEATURE_GROUPS)


def _log_ratio(numerator: Floats, denominator: Floats) -> Floats:
    # Values below one yuan (or one dollar) carry no information; flooring them keeps logs finite.
    ratio = np.log(np.maximum(numerator, 1.0)) - np.log(np.maximum(denominator, 1.0))
    clipped: Floats = np.clip(ratio, -LOG_CLIP, LOG_CLIP)
    return clipped


def _member(codes: Ints, vocabulary: tuple[str, ...], wanted: tuple[str, ...]) -> Floats:
    """1.0 where codes[k] (an index into vocabulary) is one of ``wanted``."""
    table = np.array([v in wanted for v in vocabulary], dtype=np.float64)
    picked: Floats = table[codes]
    return picked


def _collateral_by_kind(firms: FirmTable) -> Floats:
    """m × COLLATERAL_KINDS: what a firm could pledge under each kind (0 for unsecured kinds)."""
    values = np.zeros((firms.m, len(COLLATERAL_KINDS)))
    kind = {k: i for i, k in enumerate(COLLATERAL_KINDS)}
    values[:, kind[CollateralKind.REAL_ESTATE]] = firms.collateral_real_estate
    values[:, kind[CollateralKind.EQUIPMENT]] = firms.collateral_equipment
    values[:, kind[CollateralKind.INTELLECTUAL_PROPERTY]] = (
        PLEDGE_VALUE_INVENTION_YUAN * firms.invention_patents
        + PLEDGE_VALUE_UTILITY_YUAN * firms.utility_patents
    )
    values[:, kind[CollateralKind.RECEIVABLES]] = firms.receivables
    values[:, kind[CollateralKind.PROCUREMENT_CONTRACT]] = firms.procurement
    return values


def _cap_base(firms: FirmTable) -> Floats:
    """m × CAP_BASES: the firm figure each cap basis is a percentage of (NaN for no cap)."""
    values = np.full((firms.m, len(CAP_BASES)), np.nan)
    basis = {b: i for i, b in enumerate(CAP_BASES)}
    values[:, basis[AmountCapBasis.GOV_PROCUREMENT_CONTRACTS]] = firms.procurement
    values[:, basis[AmountCapBasis.RECEIVABLES]] = firms.receivables
    values[:, basis[AmountCapBasis.EXPORT_REVENUE]] = firms.export_usd * USD_TO_CNY
    values[:, basis[AmountCapBasis.COLLATERAL]] = (
        firms.collateral_real_estate + firms.collateral_equipment
    )
    values[:, basis[AmountCapBasis.ANNUAL_REVENUE]] = firms.revenue
    return values


def pair_features(
    firms: FirmTable,
    firm_idx: Ints,
    products: ProductTable,
    product_idx: Ints,
    amount: Floats,
    term: Floats,
    elig: PairEligibility,
) -> npt.NDArray[np.float64]:
    """k × len(FEATURE_NAMES) for pairs k = (firms[firm_idx[k]], products[product_idx[k]]).

    ``amount`` (yuan) and ``term`` (months) are per pair; ``elig`` is evaluate_pairs of the same
    pairs. Every operation is elementwise on gathered columns, so a pair's row is the same
    whichever call computes it.
    """
    f, p = np.asarray(firm_idx, dtype=np.int64), np.asarray(product_idx, dtype=np.int64)
    k = len(f)
    if not (len(p) == len(amount) == len(term) == len(elig.failed) == k):
        raise ValueError("firm_idx, product_idx, amount, term and elig must have one row per pair")
    out = np.zeros((k, len(FEATURE_NAMES)))

    def put(name: str, values: Floats | Ints | npt.NDArray[np.bool_]) -> None:
        out[:, COLUMN[name]] = values

    rows = np.arange(k)
    amount = np.maximum(np.asarray(amount, dtype=np.float64), 1.0)
    term = np.asarray(term, dtype=np.float64)
    category = products.category[p]
    is_trade = _member(category, CATEGORIES, _TRADE)
    is_tech = _member(category, CATEGORIES, _TECH)
    is_ip = _member(category, CATEGORIES, (_C.IP_PLEDGE,))
    is_first_loan = _member(category, CATEGORIES, (_C.FIRST_LOAN,))

    put("log_revenue_to_amount", _log_ratio(firms.revenue[f], amount))
    put("amount_to_assets", np.minimum(amount / np.maximum(firms.assets[f], 1.0), MAX_LEVERAGE))
    put("log_amount_to_assets", _log_ratio(amount, firms.assets[f]))
    # Asking for more than the firm owns is a step of its own, not more of the same slope: a
    # linear model needs this hinge to keep leverage monotone (without it, it bent the curve
    # with a wrong-signed log term, which penalised small requests).
    put("amount_over_assets", np.maximum(out[:, COLUMN["amount_to_assets"]] - 1.0, 0.0))

    kind = products.collateral_kind[p]
    secured = _member(kind, COLLATERAL_KINDS, _SECURED)
    by_kind = _collateral_by_kind(firms)
    pledged = by_kind[f, kind]
    put("secured", secured)
    put("secured_x_log_collateral_to_amount", secured * _log_ratio(pledged, amount))
    # An IP pledge's own driver, with its own weight: patents are valued far less surely than
    # buildings or contracts (our per-patent values are rough), so the shared collateral slope
    # fits them badly. Of the category × driver ratios tried (export revenue for trade finance,
    # procurement contracts for 政采贷, receivables, equipment for leasing), only this one
    # improved the time holdout; the others are carried by the shared collateral and cap terms.
    patent_value = by_kind[f, _IP_KIND]
    put("ip_pledge_x_log_patent_value_to_amount", is_ip * _log_ratio(patent_value, amount))

    put("log1p_years", np.log1p(np.clip(firms.years[f], 0.0, 200.0)))
    rating = firms.rating_rank[f]
    put("rating_rank", rating)
    put("rated", rating > 0)
    out[rows, COLUMN[f"size_{SIZE_CLASSES[0].value}"] + firms.size[f]] = 1.0

    export_usd = firms.export_usd[f]
    exporter = (export_usd > 0).astype(np.float64)
    log_export = np.clip(np.log(np.maximum(export_usd, 1.0) / 1e6), -LOG_CLIP, LOG_CLIP)
    put("exporter", exporter)
    put("log_export_musd", log_export)
    put("trade_x_log_export_musd", is_trade * log_export)
    put("trade_x_non_exporter", is_trade * (1.0 - exporter))

    invention = np.log1p(np.maximum(firms.invention_patents[f], 0.0))
    utility = np.log1p(np.maximum(firms.utility_patents[f], 0.0))
    patents = np.log1p(np.maximum(firms.patents[f], 0.0))
    high_tech = firms.has[f, _HIGH_TECH].astype(np.float64)
    specialized = firms.has[f, _SPECIALIZED].astype(np.float64)
    put("log1p_invention_patents", invention)
    put("log1p_utility_patents", utility)
    put("high_tech", high_tech)
    put("specialized_sme", specialized)
    put("tech_x_high_tech", is_tech * high_tech)
    put("tech_x_specialized_sme", is_tech * specialized)
    put("tech_x_log1p_invention_patents", is_tech * invention)
    put("ip_pledge_x_log1p_patents", is_ip * patents)

    never_borrowed = firms.has[f, _NEVER_BORROWED].astype(np.float64)
    put("never_borrowed", never_borrowed)
    put("never_borrowed_x_first_loan", never_borrowed * is_first_loan)

    put("term_years", np.clip(term, 0.0, 360.0) / 12.0)
    put("term_years_over_3", np.clip(term - 36.0, 0.0, 360.0) / 12.0)

    base = _cap_base(firms)[f, products.cap_basis[p]]
    has_cap = ~np.isnan(base)
    cap = np.where(has_cap, base, 0.0) * products.cap_pct[p] / 100.0
    put("has_cap", has_cap)
    put("has_cap_x_log_amount_to_cap", np.where(has_cap, _log_ratio(amount, cap), 0.0))
    put("over_cap", has_cap & (amount > cap))

    put("log_amount", np.clip(np.log(amount), 0.0, 40.0))

    out[rows, COLUMN[f"category_{CATEGORIES[0].value}"] + category] = 1.0
    out[rows, COLUMN[f"collateral_{COLLATERAL_KINDS[0].value}"] + kind] = 1.0
    put("rate_min_pct", products.rate_min_bp[p] / 100.0)
    put("rate_max_pct", products.rate_max_bp[p] / 100.0)
    put("guarantee_fee_pct", products.guarantee_fee_bp[p] / 100.0)
    put("subsidy_share", products.subsidy_pct[p] / 100.0)

    put("unmet_criteria", elig.unmet_count)
    put("eligible", elig.eligible)
    return out
