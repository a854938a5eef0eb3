"""Batch ranking: the same top products as ranking one firm at a time, and coverage counts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from functools import cache
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from services.matching.batch import (
    BatchResult,
    Coverage,
    eligibility_counts,
    rank_batch,
    requested_columns,
    top_columns,
)
from services.matching.model import LearnedModel, PriorModel, Scorer
from services.matching.ranking import rank_products_for_firm, requested_terms
from services.matching.tables import FirmTable, ProductTable
from services.matching.train import candidates, train, training_set
from services.registry.seed.population import generate_firms
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import RankOptions
from shared.schemas.product import ProductFeatures
from shared.vocab.size_class import classify_size
from tests.matching import helpers
from tests.matching.training_data import catalogue_products, export_rows

AS_OF = date(2026, 11, 1)
TOP_K = 5


def as_features(firm: dict[str, Any]) -> FirmFeatures:
    size = classify_size(
        firm["industry_section"],
        firm["industry_division"],
        employees=firm["employees"],
        revenue_yuan=firm["annual_revenue_yuan"],
        total_assets_yuan=firm["total_assets_yuan"],
    )
    return FirmFeatures.model_validate({**firm, "size_class": size})


@cache
def firms() -> tuple[FirmFeatures, ...]:
    """60 synthetic firms, with and without a stated need, plus a few that qualify widely."""
    drawn = [as_features(f) for f in generate_firms(60, seed=7)]
    broad = [
        helpers.firm(),
        helpers.firm(is_high_tech=True, core_enterprise_receivables_yuan=3_000_000),
        helpers.firm(has_borrowed_before=False, is_green_listed=True, need_amount_yuan=None),
    ]
    return (*drawn, *broad)


@cache
def catalogue() -> ProductTable:
    """The seed catalogue plus exact copies of five products under new ids: copies tie on
    every score, so the order among them tests the tie-break (catalogue position)."""
    products = catalogue_products()
    copies = [
        ProductFeatures.model_validate(p.model_dump() | {"id": 1_000 + p.id})
        for p in products[::10]
    ]
    return ProductTable.from_products([*products, *copies])


@cache
def logistic() -> LearnedModel:
    result = train(export_rows())
    assert result.chosen == "logistic_regression"  # the other candidate is covered below
    return LearnedModel(result.estimator, result.meta)


@cache
def boosting() -> LearnedModel:
    data = training_set(export_rows())
    estimator = candidates(seed=0)["hist_gradient_boosting"].fit(data.X, data.y)
    meta = {"version": "hgb-test", "feature_means": data.X.mean(axis=0).tolist()}
    return LearnedModel(estimator, meta)


SCORERS = {"prior": PriorModel, "logistic": logistic, "boosting": boosting}


def scorer(name: str) -> Scorer:
    made: Scorer = SCORERS[name]()
    return made


def tie_free(ids: list[int], scores: list[float], exact: bool) -> list[int]:
    """``ids`` with each run of equal scores sorted, when ``exact`` is False.

    A linear model scores a row through BLAS, whose sums can differ in the last bit with the
    row's position in the matrix (1e-15 here), so two identical products tie exactly in one
    call and not in another; their order is then noise, in rank_products_for_firm as here.
    Trees and the prior score each row alone, and ties keep catalogue order exactly.
    """
    if exact:
        return ids
    out: list[int] = []
    run: list[int] = []
    for j, pid in enumerate(ids):
        if run and not math.isclose(scores[j], scores[j - 1], rel_tol=1e-12, abs_tol=1e-12):
            out += sorted(run)
            run = []
        run.append(pid)
    return out + sorted(run)


@pytest.mark.parametrize("name", list(SCORERS))
def test_batch_top_k_is_the_per_firm_ranking(name: str) -> None:
    model, table = scorer(name), catalogue()
    exact = name != "logistic"
    result = rank_batch(firms(), table, model, as_of=AS_OF, top_k=TOP_K, chunk_firms=7)
    full = rank_batch(firms(), table, model, as_of=AS_OF, top_k=table.n, chunk_firms=7)
    assert (result.firm_count, result.pair_count) == (len(firms()), len(firms()) * table.n)
    assert (result.model_version, result.is_prior) == (model.version, model.is_prior)
    # argpartition's top k is the head of the full stable order, in the same call
    np.testing.assert_array_equal(result.top_product_ids, full.top_product_ids[:, :TOP_K])
    np.testing.assert_array_equal(result.top_scores, full.top_scores[:, :TOP_K])

    everything = RankOptions(limit=1_000, near_miss_limit=0)
    ties = 0
    for i, firm in enumerate(firms()):
        one = rank_products_for_firm(firm, table, model, everything, as_of=AS_OF)
        ids, scores = zip(*full.top(i), strict=True)
        assert len(ids) == one.eligible == full.eligible_counts[i]
        assert list(scores) == pytest.approx([r.score for r in one.ranked], abs=1e-6)
        assert tie_free(list(ids), list(scores), exact) == tie_free(
            [r.product_id for r in one.ranked], list(scores), exact
        )
        head = scores[:TOP_K]
        ties += any(math.isclose(a, b, rel_tol=1e-12) for a, b in pairwise(head))
    assert result.eligible_pairs == full.eligible_pairs == int(result.eligible_counts.sum())
    assert ties > 0  # some copied products met their originals in a top 5


@pytest.mark.parametrize("name", list(SCORERS))
def test_chunk_size_and_input_form_do_not_change_results(name: str) -> None:
    model, table = scorer(name), catalogue()
    exact = name != "logistic"

    def run(firms_in: Any, chunk: int) -> BatchResult:
        return rank_batch(firms_in, table, model, as_of=AS_OF, top_k=table.n, chunk_firms=chunk)

    def orders(result: BatchResult) -> list[list[int]]:
        return [
            tie_free([pid for pid, _ in result.top(i)], [s for _, s in result.top(i)], exact)
            for i in range(result.firm_count)
        ]

    reference = run(firms(), 1)
    as_table = FirmTable.from_firms(firms(), AS_OF)
    for other in (run(firms(), 13), run(firms(), 10_000), run(as_table, 4)):
        assert orders(other) == orders(reference)
        if exact:
            np.testing.assert_array_equal(other.top_product_ids, reference.top_product_ids)
        np.testing.assert_allclose(other.top_scores, reference.top_scores, rtol=1e-12)
        np.testing.assert_array_equal(other.eligible_counts, reference.eligible_counts)
        assert other.coverage == reference.coverage


def test_requested_columns_are_requested_terms() -> None:
    amount, term = requested_columns(FirmTable.from_firms(firms(), AS_OF))
    expected = [requested_terms(f, RankOptions()) for f in firms()]
    assert any(f.need_amount_yuan is None for f in firms())
    assert list(zip(amount.tolist(), term.tolist(), strict=True)) == expected


def test_coverage_counts_towns_and_sectors_the_catalogue_misses() -> None:
    in_songshanhu = helpers.product(id=1, elig_town_codes=[helpers.SONGSHANHU])
    for_traders = helpers.product(id=2, elig_industry_sections=["F"])
    table = ProductTable.from_products([in_songshanhu, for_traders])
    trader = {"industry_section": "F", "industry_division": 51}
    firms_ = [
        helpers.firm(),  # 塘厦 manufacturer with a need: nothing fits
        helpers.firm(town_code=helpers.SONGSHANHU),  # 松山湖: the park's product
        helpers.firm(**trader, need_amount_yuan=None, need_term_months=None),  # the trade loan
        helpers.firm(town_code=helpers.SHILONG, need_amount_yuan=None, need_term_months=None),
        helpers.firm(need_amount_yuan=500_000),  # 塘厦 again, a need, nothing fits
    ]
    result = rank_batch(firms_, table, PriorModel(), as_of=AS_OF, chunk_firms=2)
    counts = eligibility_counts(firms_, table, as_of=AS_OF, chunk_firms=3)

    def counted(coverage: Mapping[str, Coverage]) -> dict[str, tuple[int, int, int]]:
        return {
            key: (c.firms, c.firms_with_eligible, c.firms_with_need_but_no_eligible)
            for key, c in coverage.items()
        }

    for stats in (result, counts):
        assert stats.eligible_counts.tolist() == [0, 1, 1, 0, 0]
        assert stats.firms_without_eligible.tolist() == [0, 3, 4]
        assert counted(stats.coverage.by_town) == {
            helpers.TANGXIA: (3, 1, 2),
            helpers.SONGSHANHU: (1, 1, 0),
            helpers.SHILONG: (1, 0, 0),
        }
        assert counted(stats.coverage.by_section) == {"C": (4, 1, 2), "F": (1, 1, 0)}
    # Prior: coverage − 2 × rate; a BBB firm pays the middle of 3.60–4.80%, full coverage.
    assert [result.top(i) for i in range(len(firms_))] == [
        [],
        [(1, pytest.approx(1 - 2 * 0.042))],
        [(2, pytest.approx(1 - 2 * 0.042))],
        [],
        [],
    ]
    assert result.pair_count == 10
    assert result.eligible_pairs == 2


def test_top_columns_keeps_the_stable_order_of_ties() -> None:
    inf = np.inf
    scores = np.array(
        [
            [0.1, 0.5, 0.5, 0.3, 0.5, -inf],  # a three-way tie across the cut at k=2
            [0.2, -inf, -inf, -inf, -inf, -inf],  # fewer rankable products than k
            [0.4, 0.3, 0.2, 0.1, 0.0, -0.1],
            [-inf] * 6,
        ]
    )
    for k in range(8):
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        expected = np.where(np.isfinite(np.take_along_axis(scores, expected, 1)), expected, -1)
        expected = np.pad(expected, ((0, 0), (0, k - expected.shape[1])), constant_values=-1)
        np.testing.assert_array_equal(top_columns(scores, k), expected)
    assert top_columns(scores, 2).tolist() == [[1, 2], [0, -1], [0, 1], [-1, -1]]


def test_empty_inputs_and_the_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    table = catalogue()
    nobody = rank_batch([], table, PriorModel(), as_of=AS_OF)
    assert nobody.firm_count == nobody.pair_count == nobody.eligible_pairs == 0
    assert nobody.top_product_ids.shape == (0, TOP_K)
    assert dict(nobody.coverage.by_town) == {}
    nothing = rank_batch(firms()[:3], ProductTable.from_products([]), PriorModel(), as_of=AS_OF)
    assert nothing.firms_without_eligible.tolist() == [0, 1, 2]
    assert all(nothing.top(i) == [] for i in range(3))

    quiet = rank_batch(firms(), table, PriorModel(), as_of=AS_OF)
    assert capsys.readouterr().err == ""
    shown = rank_batch(firms(), table, PriorModel(), as_of=AS_OF, progress=True, chunk_firms=9)
    assert f"{len(firms())}/{len(firms())}" in capsys.readouterr().err
    np.testing.assert_array_equal(shown.top_product_ids, quiet.top_product_ids)
    with pytest.raises(ValueError, match="chunk_firms"):
        rank_batch(firms(), table, PriorModel(), as_of=AS_OF, chunk_firms=0)
