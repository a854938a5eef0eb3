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

import math
from collections import OrderedDict
from collections.abc import Collection, Sequence
from datetime import date
from typing import Any

import numpy as np

from services.matching.cost import PairCosts, estimate_costs
from services.matching.eligibility import ACTIONABLE, PairEligibility, evaluate_firm
from services.matching.explain import MODEL_GROUPS
from services.matching.features import FEATURE_GROUPS, pair_features
from services.matching.model import Scorer
from services.matching.reasons import Explainer, cost_items, top_groups
from services.matching.tables import FirmTable, Floats, Ints, ProductTable
from shared.china_date import today_in_china
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import RankOptions, RankResponse
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
    verified: Collection[str] = (),
) -> RankResponse:
    """Eligible products ranked by score, each with its cost and reasons, and near misses."""
    return RankResponse.model_validate(
        rank_answer(firm, products, scorer, options, as_of=as_of, verified=verified)
    )


def rank_answer(
    firm: FirmFeatures,
    products: ProductTable,
    scorer: Scorer,
    options: RankOptions,
    *,
    as_of: date | None = None,
    verified: Collection[str] = (),
) -> dict[str, Any]:
    """rank_products_for_firm as the plain data RankResponse validates: what the service
    serialises, without building (and then dumping) a model per reason. ``verified``: the
    firm's fields an official register gives (what verified_only rules accept)."""
    as_of = as_of or today_in_china()
    firms = FirmTable.from_firms([firm], as_of, [verified])
    amount, term = requested_terms(firm, options)
    n = products.n
    if n == 0:
        return _answer(scorer, 0, 0, [], [])
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

    model_groups = None
    if features is not None and len(order):
        # eligible is sorted, so a product's row among the features is its position in it.
        contributions = scorer.contributions(features[np.searchsorted(eligible, order)])
        model_groups = top_groups(contributions, EXPLAINED, GROUP_NAMES, MODEL_REASONS)

    explainer = Explainer(firms, 0, products, amount, term, options.lang)
    reasons = explainer.reasons(elig, costs, order, model_groups)
    cost = cost_items(costs, order)
    columns = zip(
        products.ids[order].tolist(),
        score[order].tolist(),
        probability[order].tolist(),
        costs.coverage[order].tolist(),
        strict=True,
    )
    ranked = [
        {
            "product_id": product_id,
            "rank": rank + 1,
            "score": round(product_score, 6),
            "approval_probability": probability_or_none(p),
            "coverage": round(coverage, 4),
            "cost": cost[rank],
            "reasons": reasons[rank],
        }
        for rank, (product_id, product_score, p, coverage) in enumerate(columns)
    ]
    near_misses = _near_misses(elig, costs, products, options, explainer)
    return _answer(scorer, n, len(eligible), ranked, near_misses)


def _answer(
    scorer: Scorer,
    evaluated: int,
    eligible: int,
    ranked: list[dict[str, Any]],
    near_misses: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "model_version": scorer.version,
        "is_prior": scorer.is_prior,
        "degraded": False,
        "evaluated": evaluated,
        "eligible": eligible,
        "ranked": ranked,
        "near_misses": near_misses,
    }


def probability_or_none(value: float) -> float | None:
    """A probability as answers give it: 4 decimals, None under the prior (NaN)."""
    return None if math.isnan(value) else round(value, 4)


def _subset(elig: PairEligibility, rows: Ints) -> PairEligibility:
    return PairEligibility(failed=elig.failed[rows], gap=elig.gap[rows])


def score_pairs(probability: Floats, costs: PairCosts, is_prior: bool) -> Floats:
    rate = costs.effective_rate_bp / 10_000
    likely = np.ones_like(probability) if is_prior else np.nan_to_num(probability, nan=0.0)
    result: Floats = likely * costs.coverage - COST_WEIGHT * rate
    return result


def _near_misses(
    elig: PairEligibility,
    costs: PairCosts,
    products: ProductTable,
    options: RankOptions,
    explainer: Explainer,
) -> list[dict[str, Any]]:
    """Products the firm fails on one or two rules: fewest gaps, fixable ones, first."""
    if options.near_miss_limit == 0:
        return []
    unmet = elig.unmet_count
    candidates = np.flatnonzero((unmet >= 1) & (unmet <= options.max_unmet_for_near_miss))
    fixable = (elig.failed[candidates] & ~ACTIONABLE).sum(axis=1) == 0
    order = candidates[np.lexsort((-costs.coverage[candidates], ~fixable, unmet[candidates]))]
    order = order[: options.near_miss_limit]
    cost = cost_items(costs, order)
    return [
        {"product_id": product_id, "unmet": explainer.unmet(elig, j), "cost": cost[k]}
        for k, (product_id, j) in enumerate(
            zip(products.ids[order].tolist(), order.tolist(), strict=True)
        )
    ]
