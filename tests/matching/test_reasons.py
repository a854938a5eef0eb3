"""The whole answer at once says what the one-pair explanations say, as the schema has it."""

from __future__ import annotations

import dataclasses
from datetime import date
from functools import cache
from typing import Any

import numpy as np
import orjson
import pytest

from services.matching.cost import PairCosts, cost_estimate, estimate_costs
from services.matching.eligibility import PairEligibility, evaluate_firm
from services.matching.explain import cost_reason, model_reason, rule_reasons, unmet_criteria
from services.matching.features import pair_features
from services.matching.model import LearnedModel, PriorModel, Scorer
from services.matching.ranking import (
    EXPLAINED,
    GROUP_NAMES,
    MODEL_REASONS,
    rank_answer,
    rank_products_for_firm,
    requested_terms,
)
from services.matching.reasons import cost_items
from services.matching.tables import FirmTable, ProductTable
from services.matching.train import candidates, train, training_set
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import RankOptions, RankResponse
from tests.matching.training_data import catalogue_products, export_rows, make_firm

AS_OF = date(2026, 11, 1)
OPTIONS = [
    RankOptions(),
    RankOptions(lang="en", limit=50, near_miss_limit=30),
    RankOptions(limit=3, near_miss_limit=0),
    RankOptions(
        max_unmet_for_near_miss=4, requested_amount_yuan=6_000_000, requested_term_months=48
    ),
]


@cache
def scorers() -> dict[str, Scorer]:
    """The prior, and each training candidate fit on the same rows."""
    rows = export_rows()[:3_000]
    trained = train(rows, seed=0)
    data = training_set(rows)
    out: dict[str, Scorer] = {"prior": PriorModel()}
    for name, estimator in candidates(0).items():
        estimator.fit(data.X, data.y)
        out[name] = LearnedModel(estimator, dict(trained.meta) | {"version": f"test-{name}"})
    return out


@cache
def catalogue() -> ProductTable:
    return ProductTable.from_products(catalogue_products())


def firms() -> list[FirmFeatures]:
    return [
        make_firm(),
        make_firm(need_amount_yuan=2_000_000, need_term_months=12),
        make_firm(
            employees=300,
            annual_revenue_yuan=150_000_000,
            total_assets_yuan=90_000_000,
            size_class="medium",
            export_revenue_usd=3_000_000,
            invention_patents=4,
            utility_patents=9,
            is_high_tech=True,
            credit_rating="A",
            collateral_real_estate_yuan=12_000_000,
            need_amount_yuan=8_000_000,
            need_term_months=36,
        ),
        make_firm(
            employees=6,
            annual_revenue_yuan=900_000,
            total_assets_yuan=300_000,
            size_class="micro",
            has_borrowed_before=False,
            established_on=date(2025, 3, 1),
        ),
    ]


def one_pair_at_a_time(
    firm: FirmFeatures, products: ProductTable, scorer: Scorer, options: RankOptions
) -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Reasons, costs and near-miss gaps of rank_answer's products, from the public one-pair
    functions (rule_reasons, model_reason, cost_reason, unmet_criteria, cost_estimate)."""
    answer = rank_answer(firm, products, scorer, options, as_of=AS_OF)
    table = FirmTable.from_firms([firm], AS_OF)
    amount, term = requested_terms(firm, options)
    n = products.n
    zeros, every = np.zeros(n, dtype=np.int64), np.arange(n, dtype=np.int64)
    elig = evaluate_firm(table, 0, products)
    costs = estimate_costs(table, zeros, products, every, np.full(n, amount), np.full(n, term))
    index = {int(pid): j for j, pid in enumerate(products.ids)}
    order = np.array([index[r["product_id"]] for r in answer["ranked"]], dtype=np.int64)
    contributions = None
    if not scorer.is_prior and len(order):
        eligible = np.flatnonzero(elig.eligible)
        subset = PairEligibility(failed=elig.failed[eligible], gap=elig.gap[eligible])
        k = len(eligible)
        x = pair_features(
            table, zeros[:k], products, eligible, np.full(k, amount), np.full(k, term), subset
        )
        contributions = scorer.contributions(x[np.searchsorted(eligible, order)])
    reasons = []
    for rank, j in enumerate(order.tolist()):
        said = rule_reasons(elig, j, table, 0, products, j, options.lang)
        if contributions is not None:
            row = contributions[rank]
            for g in np.argsort(-np.abs(row[EXPLAINED]), kind="stable")[:MODEL_REASONS]:
                group = int(EXPLAINED[g])
                reason = model_reason(
                    GROUP_NAMES[group],
                    float(row[group]),
                    table,
                    0,
                    products,
                    j,
                    amount,
                    options.lang,
                    term=term,
                )
                if reason is not None:
                    said.append(reason)
        said.append(cost_reason(costs, j, products, j, options.lang))
        reasons.append([r.model_dump() for r in said])
    missed = [index[m["product_id"]] for m in answer["near_misses"]]
    gaps = [
        [u.model_dump() for u in unmet_criteria(elig, j, table, 0, products, j, options.lang)]
        for j in missed
    ]
    ranked_costs = [cost_estimate(costs, j).model_dump() for j in [*order.tolist(), *missed]]
    return reasons, ranked_costs, gaps


@pytest.mark.parametrize("scorer_name", ["prior", "logistic_regression", "hist_gradient_boosting"])
@pytest.mark.parametrize("options", OPTIONS, ids=range(len(OPTIONS)))
def test_the_answer_explains_as_one_pair_at_a_time(scorer_name: str, options: RankOptions) -> None:
    scorer = scorers()[scorer_name]
    for firm in firms():
        answer = rank_answer(firm, catalogue(), scorer, options, as_of=AS_OF)
        reasons, costs, gaps = one_pair_at_a_time(firm, catalogue(), scorer, options)
        assert [r["reasons"] for r in answer["ranked"]] == reasons
        shown = [*answer["ranked"], *answer["near_misses"]]
        assert [item["cost"] for item in shown] == costs
        assert [m["unmet"] for m in answer["near_misses"]] == gaps
        if not scorer.is_prior and answer["ranked"]:
            assert any(r["source"] == "model" for r in answer["ranked"][0]["reasons"])


@pytest.mark.parametrize("scorer_name", ["prior", "logistic_regression", "hist_gradient_boosting"])
def test_the_answer_is_what_the_schema_validates(scorer_name: str) -> None:
    scorer = scorers()[scorer_name]
    for firm in firms():
        for options in OPTIONS:
            answer = rank_answer(firm, catalogue(), scorer, options, as_of=AS_OF)
            model = RankResponse.model_validate(answer)
            # Same keys in the same order, and ints stay ints: the same bytes either way.
            assert orjson.dumps(model.model_dump(mode="json")) == orjson.dumps(answer)
            assert model == rank_products_for_firm(firm, catalogue(), scorer, options, as_of=AS_OF)


def test_costs_round_half_to_even_as_cost_estimate() -> None:
    halves = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1e9 + 0.5, 2_000_000.4999, 3.5000001])
    columns = {f.name: halves + i for i, f in enumerate(dataclasses.fields(PairCosts))}
    costs = PairCosts(**columns)
    rows = np.arange(len(halves), dtype=np.int64)
    assert cost_items(costs, rows) == [cost_estimate(costs, k).model_dump() for k in rows]


def test_a_cost_that_is_not_a_number_fails_as_cost_estimate() -> None:
    columns = {f.name: np.array([1.0, np.nan]) for f in dataclasses.fields(PairCosts)}
    costs = PairCosts(**columns)
    with pytest.raises(ValueError, match="NaN"):
        cost_estimate(costs, 1)
    with pytest.raises(ValueError, match="NaN"):
        cost_items(costs, np.array([0, 1], dtype=np.int64))
