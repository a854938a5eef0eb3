"""The ranked products and near misses of one firm as plain data, explained all at once.

One answer explains 20 products and 10 near misses. Built one pydantic model and one message
at a time, that cost more than the ranking itself, and most of it was repeated: a fact about
the firm reads the same for every product. Here each text is worded once per answer, the
rules each product sets are read in one pass, the costs are rounded column by column, and the
output is the plain data that RankResponse validates to itself (tests hold it to that), so
the service serialises it without building the models.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from services.matching.cost import PairCosts, cost_estimate, lending_limit
from services.matching.eligibility import CRITERION_INDEX, PairEligibility
from services.matching.explain import (
    MET_ORDER,
    MODEL_GROUPS,
    cost_message,
    met_key,
    met_message,
    model_fact,
    model_message,
    restrictive_rules,
    unmet_items,
)
from services.matching.tables import FirmTable, Floats, Ints, ProductTable
from shared.schemas.matching import Lang

# Model groups whose fact is about the firm and the request alone: worded once per answer.
_FIRM_FACTS = MODEL_GROUPS - {"collateral_coverage", "term", "amount_cap"}
_MET_CRITERIA = np.array([CRITERION_INDEX[code] for code in MET_ORDER])
# PairCosts columns in CostEstimate's field order.
_COST_FIELDS = (
    ("amount_yuan", "offer_amount"),
    ("term_months", "term_months"),
    ("rate_bp", "rate_bp"),
    ("annual_interest_yuan", "annual_interest"),
    ("annual_subsidy_yuan", "annual_subsidy"),
    ("annual_guarantee_fee_yuan", "annual_fee"),
    ("annual_cost_yuan", "annual_cost"),
    ("effective_rate_bp", "effective_rate_bp"),
)
_EXACT_INTEGERS = 2.0**53


def cost_items(costs: PairCosts, rows: Ints) -> list[dict[str, int]]:
    """cost_estimate of each row as plain data: the same half-to-even rounding, per column."""
    values = np.stack([getattr(costs, column)[rows] for _, column in _COST_FIELDS], axis=1)
    rounded = np.rint(values)
    if not (np.isfinite(rounded).all() and (np.abs(rounded) < _EXACT_INTEGERS).all()):
        # Not a figure a firm sees; cost_estimate says what is wrong with it.
        return [cost_estimate(costs, int(k)).model_dump() for k in rows]
    names = [name for name, _ in _COST_FIELDS]
    return [dict(zip(names, row, strict=True)) for row in rounded.astype(np.int64).tolist()]


class Explainer:
    """Reasons for one firm (row i of ``firms``) asking for ``amount`` over ``term`` months."""

    def __init__(
        self,
        firms: FirmTable,
        i: int,
        products: ProductTable,
        amount: float,
        term: float,
        lang: Lang,
    ) -> None:
        self.firms, self.i, self.products = firms, i, products
        self.amount, self.term, self.lang = amount, term, lang
        self._facts: dict[tuple[object, ...], str] = {}
        self._met: dict[tuple[object, ...], str] = {}

    def reasons(
        self,
        elig: PairEligibility,
        costs: PairCosts,
        rows: Ints,
        model_groups: list[list[tuple[str, float]]] | None,
    ) -> list[list[dict[str, Any]]]:
        """Reasons of each product rows[r] (pair rows[r] of ``elig`` and ``costs``): the rules
        it sets that the firm meets, then ``model_groups[r]`` (group, weight) in that order,
        then its cost; as rule_reasons, model_reason and cost_reason say them."""
        products = self.products
        shown = restrictive_rules(products, rows) & ~elig.failed[rows][:, _MET_CRITERIA]
        caps = lending_limit(self.firms, np.full(len(rows), self.i), products, rows).tolist()
        out = []
        for r, j in enumerate(rows.tolist()):
            reasons: list[dict[str, Any]] = [
                {
                    "code": MET_ORDER[c],
                    "message": self._met_message(c, j),
                    "source": "rule",
                    "weight": None,
                }
                for c in np.flatnonzero(shown[r]).tolist()
            ]
            for group, weight in model_groups[r] if model_groups is not None else ():
                if group not in MODEL_GROUPS or weight == 0 or weight != weight:  # NaN
                    continue  # neither helps nor hurts, as model_reason
                message = model_message(self._model_fact(group, j, caps[r]), weight, self.lang)
                reasons.append(
                    {"code": group, "message": message, "source": "model", "weight": weight}
                )
            message = cost_message(costs, j, products, j, self.lang)
            reasons.append({"code": "cost", "message": message, "source": "cost", "weight": None})
            out.append(reasons)
        return out

    def unmet(self, elig: PairEligibility, j: int) -> list[dict[str, Any]]:
        """The rules product j (pair j) fails, as unmet_criteria says them."""
        return unmet_items(elig, j, self.firms, self.i, self.products, j, self.lang)

    def _met_message(self, c: int, j: int) -> str:
        code = MET_ORDER[c]
        key = met_key(code, self.products, j)
        message = self._met.get(key)
        if message is None:
            message = met_message(code, self.firms, self.i, self.products, j, self.lang)
            self._met[key] = message
        return message

    def _model_fact(self, group: str, j: int, cap: float) -> str:
        products = self.products
        key: tuple[object, ...]
        if group in _FIRM_FACTS:
            key = (group,)
        elif group == "collateral_coverage":
            key = (group, int(products.collateral_kind[j]))
        elif group == "term":
            key = (group, float(products.term_min[j]), float(products.term_max[j]))
        else:
            key = (group, cap)
        fact = self._facts.get(key)
        if fact is None:
            fact = model_fact(
                group,
                self.firms,
                self.i,
                products,
                j,
                self.amount,
                self.term,
                self.lang,
                cap=cap,
            )
            self._facts[key] = fact
        return fact


def top_groups(
    contributions: Floats, explained: Ints, names: tuple[str, ...], top: int
) -> list[list[tuple[str, float]]]:
    """Per row, the ``top`` explained groups by |contribution| (ties in group order), with
    their contributions: the model reasons' candidates, strongest first."""
    order = np.argsort(-np.abs(contributions[:, explained]), axis=1, kind="stable")[:, :top]
    groups = explained[order]
    weights = np.take_along_axis(contributions, groups, axis=1)
    return [
        [(names[g], w) for g, w in zip(row_groups, row_weights, strict=True)]
        for row_groups, row_weights in zip(groups.tolist(), weights.tolist(), strict=True)
    ]
