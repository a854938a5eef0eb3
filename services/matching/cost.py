"""Effective annual cost of (firm, product) pairs: how much a product would lend, and at what price.

Vectorised over k pairs (firm_idx[k], product_idx[k]) with the requested amount and term of each
pair; money is yuan and rates basis points, as float64 columns until ``cost_estimate`` rounds one
pair into integers.

- Lending limit: min(product amount_max, cap), where cap = amount_cap_pct % of the cap basis:
  gov_procurement_contracts → the firm's procurement contract value; receivables → its
  receivables from core enterprises; export_revenue → export USD × ``USD_CNY``; collateral → the
  value of the collateral the product takes (real estate, or equipment; for any other collateral
  kind real estate + equipment); annual_revenue → revenue; none → no cap.
- Offer: min(requested amount, lending limit). An offer below the product's amount_min means the
  product cannot lend to this firm: offer, coverage and every cost are 0 (the expected rate and
  the term are still reported).
- Coverage: offer / requested, in [0, 1].
- Term: the requested term clipped into [term_min, term_max].
- Rate: rate_min + (rate_max − rate_min) × risk, with risk = (7 − rating rank) / 6 for a rated
  firm (AAA, rank 7, pays rate_min; C, rank 1, pays rate_max) and 0.6 for an unrated one.
- Annual interest = offer × rate; subsidy = min(interest × subsidy_pct / 100, subsidy_cap), a cap
  of 0 meaning no cap; guarantee fee = offer × guarantee_fee_bp; annual cost = interest − subsidy
  + fee; effective rate = annual cost / offer in basis points (0 when the offer is 0).

Worked example: an IP-pledge loan of 2,000,000 at 420 bp with a 70 % subsidy capped at 1,000,000
a year costs 84,000 interest − 58,800 subsidy = 25,200 a year, an effective 126 bp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.matching.tables import (
    CAP_BASES,
    COLLATERAL_KINDS,
    FirmTable,
    Floats,
    Ints,
    ProductTable,
)
from shared.enums import AmountCapBasis, CollateralKind
from shared.schemas.matching import CostEstimate
from shared.types import YUAN_PER_USD

# Export caps are set against invoices in yuan while firms report exports in US dollars. One
# fixed round rate keeps rankings reproducible (declared once, in shared.types).
USD_CNY = float(YUAN_PER_USD)
UNRATED_RISK = 0.6  # unrated prices between BBB (0.5) and BB (0.67): unknown is not best or worst
BEST_RATING_RANK = 7  # AAA
BP = 10_000.0

_BASIS = {basis: CAP_BASES.index(basis) for basis in AmountCapBasis}
_REAL_ESTATE = COLLATERAL_KINDS.index(CollateralKind.REAL_ESTATE)
_EQUIPMENT = COLLATERAL_KINDS.index(CollateralKind.EQUIPMENT)


@dataclass(frozen=True)
class PairCosts:
    """Offer, price and annual cost of k pairs; every field is a float64 array of length k."""

    offer_amount: Floats
    coverage: Floats
    term_months: Floats
    rate_bp: Floats
    annual_interest: Floats
    annual_subsidy: Floats
    annual_fee: Floats
    annual_cost: Floats
    effective_rate_bp: Floats


def collateral_value(firms: FirmTable, firm_idx: Ints, collateral_kind: Ints) -> Floats:
    """Value of the collateral a product of each kind takes: real estate, equipment, or both."""
    real_estate = firms.collateral_real_estate[firm_idx]
    equipment = firms.collateral_equipment[firm_idx]
    value: Floats = np.where(
        collateral_kind == _REAL_ESTATE,
        real_estate,
        np.where(collateral_kind == _EQUIPMENT, equipment, real_estate + equipment),
    )
    return value


def lending_limit(
    firms: FirmTable, firm_idx: Ints, products: ProductTable, product_idx: Ints
) -> Floats:
    """The most each product would lend each firm: min(amount_max, cap_pct % of the cap basis)."""
    basis_kind = products.cap_basis[product_idx]
    basis = np.full(len(firm_idx), np.inf)
    # Each basis gathers only its own pairs, so a million pairs cost one pass per basis in use.
    firm_columns = (
        (AmountCapBasis.GOV_PROCUREMENT_CONTRACTS, firms.procurement, 1.0),
        (AmountCapBasis.RECEIVABLES, firms.receivables, 1.0),
        (AmountCapBasis.EXPORT_REVENUE, firms.export_usd, USD_CNY),
        (AmountCapBasis.ANNUAL_REVENUE, firms.revenue, 1.0),
    )
    for kind, column, scale in firm_columns:
        mask = basis_kind == _BASIS[kind]
        if mask.any():
            basis[mask] = column[firm_idx[mask]] * scale
    mask = basis_kind == _BASIS[AmountCapBasis.COLLATERAL]
    if mask.any():
        kinds = products.collateral_kind[product_idx[mask]]
        basis[mask] = collateral_value(firms, firm_idx[mask], kinds)
    # No basis means no cap, whatever the percentage says (0 % of "unlimited" is not 0).
    unbounded = np.isinf(basis)
    cap = np.full(basis.shape, np.inf)
    cap[~unbounded] = products.cap_pct[product_idx[~unbounded]] / 100.0 * basis[~unbounded]
    limit: Floats = np.minimum(products.amount_max[product_idx], cap)
    return limit


def expected_rate_bp(
    firms: FirmTable, firm_idx: Ints, products: ProductTable, product_idx: Ints
) -> Floats:
    """The rate a firm can expect within the product's range, from its credit rating."""
    rank = firms.rating_rank[firm_idx]
    risk = np.where(rank > 0, (BEST_RATING_RANK - rank) / (BEST_RATING_RANK - 1), UNRATED_RISK)
    low, high = products.rate_min_bp[product_idx], products.rate_max_bp[product_idx]
    rate: Floats = low + (high - low) * risk
    return rate


def estimate_costs(
    firms: FirmTable,
    firm_idx: Ints,
    products: ProductTable,
    product_idx: Ints,
    amount: Floats,
    term: Floats,
) -> PairCosts:
    """Offer, rate and annual cost of pair k = (firms[firm_idx[k]], products[product_idx[k]]).

    ``amount`` and ``term`` are the requested amount (yuan) and term (months) of each pair.
    """
    p = product_idx
    amount = np.asarray(amount, dtype=np.float64)
    offer = np.minimum(amount, lending_limit(firms, firm_idx, products, p))
    offer = np.where(offer >= products.amount_min[p], offer, 0.0)
    coverage = np.clip(np.divide(offer, amount, out=np.zeros_like(offer), where=amount > 0), 0, 1)
    term_months = np.clip(
        np.asarray(term, dtype=np.float64), products.term_min[p], products.term_max[p]
    )
    rate = expected_rate_bp(firms, firm_idx, products, p)

    interest = offer * rate / BP
    subsidy = interest * products.subsidy_pct[p] / 100.0
    cap = products.subsidy_cap[p]
    subsidy = np.where(cap > 0, np.minimum(subsidy, cap), subsidy)
    fee = offer * products.guarantee_fee_bp[p] / BP
    cost = interest - subsidy + fee
    # Multiply before dividing so round figures stay exact: 25,200 / 2,000,000 is 126 bp.
    effective = np.divide(cost * BP, offer, out=np.zeros_like(cost), where=offer > 0)
    return PairCosts(
        offer_amount=offer,
        coverage=coverage,
        term_months=term_months,
        rate_bp=rate,
        annual_interest=interest,
        annual_subsidy=subsidy,
        annual_fee=fee,
        annual_cost=cost,
        effective_rate_bp=effective,
    )


def cost_estimate(costs: PairCosts, k: int) -> CostEstimate:
    """Pair k as the response schema: integer yuan, months and basis points (rounded)."""

    def whole(column: Floats) -> int:
        return round(float(column[k]))

    return CostEstimate(
        amount_yuan=whole(costs.offer_amount),
        term_months=whole(costs.term_months),
        rate_bp=whole(costs.rate_bp),
        annual_interest_yuan=whole(costs.annual_interest),
        annual_subsidy_yuan=whole(costs.annual_subsidy),
        annual_guarantee_fee_yuan=whole(costs.annual_fee),
        annual_cost_yuan=whole(costs.annual_cost),
        effective_rate_bp=whole(costs.effective_rate_bp),
    )
