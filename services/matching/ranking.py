"""Rank a firm's products: hard rules, then P(approval) × coverage less a cost penalty.

The score a firm sees is

    score = P(approved) × coverage − COST_WEIGHT × effective annual rate

where coverage is the share of the requested amount the product can lend (its maximum, and
its cap against contracts, receivables, exports or collateral) and the effective rate is
the annual cost after interest subsidy plus guarantee fee, as a fraction of the amount.
A likely, sufficient, cheap product wins; an unlikely or expensive one sinks. Under the
cold-start prior there is no probability yet, and ``score = coverage − COST_WEIGHT × rate``
among the eligible products: transparent rules and cost only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import date

import numpy as np

from services.matching.cost import PairCosts, cost_estimate, estimate_costs
from services.matching.eligibility import ACTIONABLE, PairEligibility, evaluate_firm
from services.matching.explain import (
    MODEL_GROUPS,
    cost_reason,
    model_reason,
    rule_reasons,
    unmet_criteria,
)
from services.matching.features import FEATURE_GROUPS, pair_features
from services.matching.model import Scorer
from services.matching.tables import FirmTable, Floats, Ints, ProductTable
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import (
    NearMiss,
    RankedProduct,
    RankOptions,
    RankResponse,
    Reason,
)
from shared.schemas.product import ProductFeatures

COST_WEIGHT = 2.0
MODEL_REASONS = 3
DEFAULT_TERM_MONTHS = 12
MIN_DEFAULT_AMOUNT = 100_000
GROUP_NAMES = tuple(FEATURE_GROUPS)
EXPLAINED = np.array([g for g, name in enumerate(GROUP_NAMES) if name in MODEL_GROUPS])


class CatalogueUnknown(Exception):
    """A request named a catalogue version this replica has not seen, without the products."""


class CatalogueCache:
    """Product tables by catalogue version: building one costs more than ranking with it."""

    def __init__(self, capacity: int = 8) -> None:
        self._tables: OrderedDict[str, ProductTable] = OrderedDict()
        self._capacity = capacity

    def table(
        self, version: str | None, products: Sequence[ProductFeatures] | None
    ) -> ProductTable:
        if products is None:
            if version is None or version not in self._tables:
                raise CatalogueUnknown(version or "")
            self._tables.move_to_end(version)
            return self._tables[version]
        if version is not None and version in self._tables:
            self._tables.move_to_end(version)
            return self._tables[version]
        table = ProductTable.from_products(products)
        if version is not None:
            self._tables[version] = table
            while len(self._tables) > self._capacity:
                self._tables.popitem(last=False)
        return table


def requested_terms(firm: FirmFeatures, options: RankOptions) -> tuple[float, float]:
    """The amount and term to rank for: asked for, else the stated need, else a default."""
    amount = options.requested_amount_yuan or firm.need_amount_yuan
    if amount is None:
        # No stated need: a fifth of a year's revenue is a typical working-capital line.
        amount = max(MIN_DEFAULT_AMOUNT, firm.annual_revenue_yuan // 5)
    term = options.requested_term_months or firm.need_term_months or DEFAULT_TERM_MONTHS
    return float(amount), float(term)


def rank_products_for_firm(
    firm: FirmFeatures,
    products: ProductTable,
    scorer: Scorer,
    options: RankOptions,
    *,
    as_of: date | None = None,
) -> RankResponse:
    as_of = as_of or date.today()
    firms = FirmTable.from_firms([firm], as_of)
    amount, term = requested_terms(firm, options)
    n = products.n
    if n == 0:
        return RankResponse(
            model_version=scorer.version,
            is_prior=scorer.is_prior,
            evaluated=0,
            eligible=0,
            ranked=[],
            near_misses=[],
        )
    elig = evaluate_firm(firms, 0, products)
    firm_idx = np.zeros(n, dtype=np.int64)
    product_idx = np.arange(n, dtype=np.int64)
    amounts = np.full(n, amount)
    terms = np.full(n, term)
    costs = estimate_costs(firms, firm_idx, products, product_idx, amounts, terms)
    eligible = np.flatnonzero(elig.eligible)

    probability = np.full(n, np.nan)
    features = None
    if len(eligible) and not scorer.is_prior:
        features = pair_features(
            firms,
            firm_idx[eligible],
            products,
            eligible,
            amounts[eligible],
            terms[eligible],
            _subset(elig, eligible),
        )
        probability[eligible] = scorer.predict(features)
    score = score_pairs(probability, costs, scorer.is_prior)
    order = eligible[np.argsort(-score[eligible], kind="stable")][: options.limit]

    contributions = None
    if features is not None and len(order):
        position = {int(j): k for k, j in enumerate(eligible)}
        contributions = scorer.contributions(features[[position[int(j)] for j in order]])

    ranked = [
        RankedProduct(
            product_id=int(products.ids[j]),
            rank=rank + 1,
            score=round(float(score[j]), 6),
            approval_probability=_probability(probability[j]),
            coverage=round(float(costs.coverage[j]), 4),
            cost=cost_estimate(costs, int(j)),
            reasons=_reasons(
                elig,
                costs,
                firms,
                products,
                int(j),
                (amount, term),
                options,
                None if contributions is None else contributions[rank],
            ),
        )
        for rank, j in enumerate(order)
    ]
    return RankResponse(
        model_version=scorer.version,
        is_prior=scorer.is_prior,
        evaluated=n,
        eligible=len(eligible),
        ranked=ranked,
        near_misses=_near_misses(elig, costs, firms, products, options),
    )


def _probability(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


def _subset(elig: PairEligibility, rows: Ints) -> PairEligibility:
    return PairEligibility(failed=elig.failed[rows], gap=elig.gap[rows])


def score_pairs(probability: Floats, costs: PairCosts, is_prior: bool) -> Floats:
    rate = costs.effective_rate_bp / 10_000
    likely = np.ones_like(probability) if is_prior else np.nan_to_num(probability, nan=0.0)
    result: Floats = likely * costs.coverage - COST_WEIGHT * rate
    return result


def _reasons(
    elig: PairEligibility,
    costs: PairCosts,
    firms: FirmTable,
    products: ProductTable,
    j: int,
    request: tuple[float, float],
    options: RankOptions,
    contributions: Floats | None,
) -> list[Reason]:
    amount, term = request
    reasons = rule_reasons(elig, j, firms, 0, products, j, options.lang)
    if contributions is not None:
        # Strongest effects first, among the groups that read as a fact about the firm.
        for g in np.argsort(-np.abs(contributions[EXPLAINED]), kind="stable")[:MODEL_REASONS]:
            group = EXPLAINED[g]
            reason = model_reason(
                GROUP_NAMES[group],
                float(contributions[group]),
                firms,
                0,
                products,
                j,
                amount,
                options.lang,
                term=term,
            )
            if reason is not None:
                reasons.append(reason)
    reasons.append(cost_reason(costs, j, products, j, options.lang))
    return reasons


def _near_misses(
    elig: PairEligibility,
    costs: PairCosts,
    firms: FirmTable,
    products: ProductTable,
    options: RankOptions,
) -> list[NearMiss]:
    """Products the firm fails on one or two rules: fewest gaps, fixable ones, first."""
    if options.near_miss_limit == 0:
        return []
    unmet = elig.unmet_count
    candidates = np.flatnonzero((unmet >= 1) & (unmet <= options.max_unmet_for_near_miss))
    fixable = (elig.failed[candidates] & ~ACTIONABLE).sum(axis=1) == 0
    order = candidates[np.lexsort((-costs.coverage[candidates], ~fixable, unmet[candidates]))]
    return [
        NearMiss(
            product_id=int(products.ids[j]),
            unmet=unmet_criteria(elig, int(j), firms, 0, products, int(j), options.lang),
            cost=cost_estimate(costs, int(j)),
        )
        for j in order[: options.near_miss_limit]
    ]
