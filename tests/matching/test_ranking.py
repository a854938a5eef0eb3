"""Ranking one firm: rules first, then the learned score; reasons, costs and near misses."""

from __future__ import annotations

from datetime import date
from functools import cache

import pytest

from services.matching.model import LearnedModel, PriorModel
from services.matching.ranking import CatalogueCache, CatalogueUnknown, rank_products_for_firm
from services.matching.tables import ProductTable
from services.matching.train import train
from shared.schemas.matching import RankOptions
from tests.matching import helpers
from tests.matching.training_data import catalogue_products, export_rows, make_firm

AS_OF = date(2026, 11, 1)


@cache
def learned() -> LearnedModel:
    result = train(export_rows())
    return LearnedModel(result.estimator, result.meta)


def catalogue() -> ProductTable:
    return ProductTable.from_products(catalogue_products())


def test_only_eligible_products_are_ranked_in_score_order() -> None:
    table = catalogue()
    response = rank_products_for_firm(
        make_firm(need_amount_yuan=2_000_000, need_term_months=12),
        table,
        learned(),
        RankOptions(limit=100),
        as_of=AS_OF,
    )
    assert response.model_version == learned().version
    assert not response.is_prior
    assert response.evaluated == table.n
    assert len(response.ranked) == response.eligible > 0
    scores = [r.score for r in response.ranked]
    assert scores == sorted(scores, reverse=True)
    near = {m.product_id for m in response.near_misses}
    assert near.isdisjoint(r.product_id for r in response.ranked)
    for ranked in response.ranked:
        assert ranked.approval_probability is not None
        assert 0 < ranked.approval_probability < 1
        assert ranked.score == pytest.approx(
            ranked.approval_probability * ranked.coverage
            - 2.0 * ranked.cost.effective_rate_bp / 10_000,
            abs=2e-4,
        )
        sources = {reason.source for reason in ranked.reasons}
        assert "cost" in sources
        assert "model" in sources


def test_exporter_sees_guanmaotong_gap_as_near_miss() -> None:
    exporter = helpers.firm(
        export_revenue_usd=8_200_000,
        size_class="medium",
        employees=350,
        annual_revenue_yuan=90_000_000,
        total_assets_yuan=60_000_000,
    )
    table = ProductTable.from_products([helpers.guanmaotong(id=7), helpers.product(id=8)])
    response = rank_products_for_firm(exporter, table, PriorModel(), RankOptions(), as_of=AS_OF)
    assert [r.product_id for r in response.ranked] == [8]
    [miss] = response.near_misses
    assert miss.product_id == 7
    [unmet] = miss.unmet
    assert unmet.code == "min_export_usd"
    assert unmet.gap == pytest.approx(1_800_000)
    assert unmet.message == "年出口额 US$8.2M，距要求 US$10M 差 US$1.8M"
    english = rank_products_for_firm(
        exporter, table, PriorModel(), RankOptions(lang="en"), as_of=AS_OF
    )
    assert "US$1.8M short" in english.near_misses[0].unmet[0].message


def test_prior_ranks_by_coverage_and_cost_and_says_so() -> None:
    cheap = helpers.product(id=1, rate_min_bp=300, rate_max_bp=300)
    dear = helpers.product(id=2, rate_min_bp=900, rate_max_bp=900)
    small = helpers.product(id=3, rate_min_bp=300, rate_max_bp=300, amount_max_yuan=500_000)
    table = ProductTable.from_products([dear, small, cheap])
    response = rank_products_for_firm(
        helpers.firm(), table, PriorModel(), RankOptions(), as_of=AS_OF
    )
    assert response.is_prior
    assert response.model_version == "prior-v1"
    assert [r.product_id for r in response.ranked] == [1, 2, 3]
    assert all(r.approval_probability is None for r in response.ranked)
    assert response.ranked[2].coverage == pytest.approx(0.25)


def test_subsidy_lowers_the_effective_cost() -> None:
    table = ProductTable.from_products([helpers.ip_pledge(id=5)])
    [ranked] = rank_products_for_firm(
        helpers.firm(), table, PriorModel(), RankOptions(), as_of=AS_OF
    ).ranked
    assert ranked.cost.annual_subsidy_yuan > 0
    assert ranked.cost.effective_rate_bp < ranked.cost.rate_bp


def test_empty_catalogue_and_limits() -> None:
    empty = rank_products_for_firm(
        helpers.firm(), ProductTable.from_products([]), learned(), RankOptions(), as_of=AS_OF
    )
    assert empty.ranked == []
    assert empty.near_misses == []
    assert empty.evaluated == 0
    limited = rank_products_for_firm(
        make_firm(), catalogue(), learned(), RankOptions(limit=2, near_miss_limit=1), as_of=AS_OF
    )
    assert len(limited.ranked) == 2
    assert len(limited.near_misses) == 1


def test_catalogue_cache_by_version() -> None:
    cache_ = CatalogueCache(capacity=1)
    products = catalogue_products()
    first = cache_.table("v1", products)
    assert cache_.table("v1", None) is first
    cache_.table("v2", products[:3])
    with pytest.raises(CatalogueUnknown):
        cache_.table("v1", None)  # evicted
    with pytest.raises(CatalogueUnknown):
        cache_.table(None, None)
