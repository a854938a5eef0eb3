"""The firms kept as columns, and the policy rules evaluated over them as masks: exactly the
pairs evaluate_pairs admits, for every firm and product, however the columns were written."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from typing import Any

import numpy as np
import pytest

from services.matching import policy
from services.matching.batch import eligibility_counts
from services.matching.eligibility import evaluate_pairs
from services.matching.firm_columns import FirmColumns
from services.matching.model import LearnedModel
from services.matching.policy import Population, coverage_gaps, population, reach, what_if
from services.matching.tables import FirmTable, ProductTable
from services.matching.train import train
from shared.criteria import CRITERIA
from shared.schemas.firm import FirmFeatures
from shared.schemas.internal import FIRM_FEED_COLUMNS
from shared.schemas.product import ProductFeatures
from tests.matching import helpers
from tests.matching.test_batch import as_features
from tests.matching.training_data import catalogue_products, export_rows

AS_OF = date(2026, 11, 1)
TANGXIA = "441900116"


@cache
def firms() -> tuple[FirmFeatures, ...]:
    """300 synthetic firms, and some at the edges: first-loan, unrated, born on 29 February."""
    from services.registry.seed.population import generate_firms

    drawn = [as_features(f) for f in generate_firms(300, seed=5)]
    edges = [
        helpers.firm(has_borrowed_before=False, is_green_listed=True, credit_rating=None),
        helpers.firm(established_on=date(2020, 2, 29), is_high_tech=True, need_amount_yuan=None),
        helpers.firm(established_on=AS_OF - timedelta(days=1), gov_procurement_contracts_yuan=1),
    ]
    return (*drawn, *edges)


def consents() -> list[bool]:
    return [i % 7 != 0 for i in range(len(firms()))]


@cache
def products() -> tuple[ProductFeatures, ...]:
    """The seed catalogue, and a product per criterion at its example setting."""
    own = [helpers.product(id=900 + i, **{c.code: c.example}) for i, c in enumerate(CRITERIA)]
    return (*catalogue_products(), *own)


def columns() -> FirmColumns:
    kept = FirmColumns.from_firms(firms(), consents())
    kept.date_to(AS_OF)
    return kept


def pairs_eligible() -> np.ndarray[Any, Any]:
    """firms × products: evaluate_pairs' verdict, the oracle."""
    table = FirmTable.from_firms(firms(), AS_OF)
    catalogue = ProductTable.from_products(products())
    firm_idx = np.repeat(np.arange(table.m), catalogue.n)
    product_idx = np.tile(np.arange(catalogue.n), table.m)
    verdict = evaluate_pairs(table, firm_idx, catalogue, product_idx).eligible
    return verdict.reshape(table.m, catalogue.n)


def test_every_mask_is_evaluate_pairs_verdict() -> None:
    oracle = pairs_eligible()
    catalogue = ProductTable.from_products(products())
    everyone = Population(columns())
    for j in range(catalogue.n):
        assert everyone.eligible(catalogue, j).tolist() == oracle[:, j].tolist(), j
    assert 0 < oracle.sum() < oracle.size  # the oracle admits some pairs and refuses others


def test_a_town_and_the_reachable_firms_are_rows_of_the_same_verdict() -> None:
    oracle = pairs_eligible()
    catalogue = ProductTable.from_products(products())
    town = np.array([f.town_code == TANGXIA for f in firms()])
    reachable = np.array(consents()) & np.array([f.need_amount_yuan is not None for f in firms()])
    kept = columns()
    for keep, chosen in (
        (town, population(kept, TANGXIA)),
        (reachable, population(kept, None, reachable=True)),
    ):
        assert chosen.m == int(keep.sum()) > 0
        for j in range(catalogue.n):
            assert chosen.eligible(catalogue, j).tolist() == oracle[keep, j].tolist()


def test_coverage_and_what_if_count_what_the_pairs_say() -> None:
    oracle = pairs_eligible()
    any_product = oracle.any(axis=1)
    needs = np.array([f.need_amount_yuan is not None for f in firms()])
    rows = coverage_gaps(Population(columns()), list(products()))
    shown = [r for r in rows if not r["suppressed"]]
    assert sum(r["firms_with_need"] for r in rows if not r["suppressed"]) <= int(needs.sum())
    for row in shown:
        cell = np.array(
            [
                f.town_code == row["town_code"] and f.industry_section == row["industry_section"]
                for f in firms()
            ]
        )
        assert row["firms_with_need"] == int((cell & needs).sum())
        assert row["firms_with_need_no_eligible"] == int((cell & needs & ~any_product).sum())
    counts = eligibility_counts(
        FirmTable.from_firms(firms(), AS_OF), ProductTable.from_products(products()), as_of=AS_OF
    )
    assert (counts.eligible_counts > 0).tolist() == any_product.tolist()

    green = [p for p in products() if p.requires_green]
    assert green
    result = what_if(Population(columns()), green, "min_revenue_yuan", None)
    assert result.firms_considered == len(firms())
    baseline = oracle[:, [products().index(p) for p in green]].any(axis=1)
    assert result.baseline_eligible == int(baseline.sum())


def test_firm_table_of_the_columns_is_from_firms() -> None:
    expected = FirmTable.from_firms(firms(), AS_OF)
    kept = columns()
    got = kept.firm_table(np.arange(kept.m))
    for name, value in expected.__dict__.items():
        assert np.array_equal(getattr(got, name), value, equal_nan=True), name


def _feed(firms_by_id: dict[int, FirmFeatures], consent: bool = True) -> FirmColumns:
    ids = sorted(firms_by_id)
    rows = [
        {"id": i, "consent_matching": consent} | firms_by_id[i].model_dump(mode="json") for i in ids
    ]
    return FirmColumns.from_feed({name: [r[name] for r in rows] for name in FIRM_FEED_COLUMNS})


def test_apply_updates_inserts_out_of_order_and_erases_in_place() -> None:
    base = {
        10: helpers.firm(employees=10),
        20: helpers.firm(employees=20),
        30: helpers.firm(employees=30),
    }
    kept = _feed(base)
    kept.date_to(AS_OF)
    generation = kept.generation
    young = helpers.firm(employees=25, established_on=AS_OF - timedelta(days=400))
    changed = {20: helpers.firm(employees=21), 25: young, 40: helpers.firm(employees=40)}
    kept.apply(_feed(changed), erased=[10, 99])  # 99: never known, nothing to drop
    assert kept.ids.tolist() == [20, 25, 30, 40]
    assert kept.data["employees"].tolist() == [21, 25, 30, 40]
    fresh = _feed({20: changed[20], 25: young, 30: base[30], 40: changed[40]})
    fresh.date_to(AS_OF)
    for name, column in fresh.data.items():
        assert np.array_equal(kept.data[name], column, equal_nan=True), name
    assert kept.years.tolist() == fresh.years.tolist()
    assert 1.0 < kept.years[1] < 1.2  # the inserted firm's age on AS_OF, not zero
    assert kept.generation > generation
    kept.apply(_feed({}))  # nothing written: nothing derived goes stale
    assert kept.generation == generation + 1


def test_ages_follow_the_day_and_29_february() -> None:
    kept = _feed({1: helpers.firm(established_on=date(2020, 2, 29))})
    kept.date_to(date(2021, 2, 28))
    assert kept.years.tolist() == [1.0]  # the anniversary in a common year
    kept.date_to(date(2021, 2, 27))
    assert kept.years[0] < 1.0


def test_the_columns_take_about_115_bytes_a_firm() -> None:
    kept = columns()
    assert 100 <= kept.nbytes / kept.m <= 130


@pytest.mark.parametrize("chunk", [7, 50_000])
def test_reach_scores_the_eligible_in_chunks_as_one_call(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = train(export_rows())
    model = LearnedModel(result.estimator, result.meta)
    product = catalogue_products()[0]
    reachable = population(columns(), None, reachable=True)
    eligible = reachable.eligible(ProductTable.from_products([product]), 0)
    table = FirmTable.from_firms(firms(), AS_OF)
    picked = reachable.rows[eligible] if reachable.rows is not None else np.flatnonzero(eligible)
    assert len(picked) >= 3
    from services.matching.batch import requested_columns
    from services.matching.features import pair_features

    one = ProductTable.from_products([product])
    product_idx = np.zeros(len(picked), dtype=np.int64)
    amount, term = requested_columns(table)
    elig = evaluate_pairs(table, picked, one, product_idx)
    features = pair_features(table, picked, one, product_idx, amount[picked], term[picked], elig)
    expected = round(float(np.mean(model.predict(features))), 4)
    monkeypatch.setattr(policy, "SCORE_CHUNK_FIRMS", chunk)
    assert reach(reachable, product, model).expected_approval_share == expected


def test_an_erased_id_given_again_keeps_the_new_firm() -> None:
    """SQLite gives the highest id again once its firm is erased: the read that reports the
    erasure also holds the new firm under that id, which stays."""
    kept = _feed({1: helpers.firm(employees=1), 2: helpers.firm(employees=2)})
    kept.apply(_feed({2: helpers.firm(employees=99)}), erased=[2])
    assert kept.ids.tolist() == [1, 2]
    assert kept.data["employees"].tolist() == [1, 99]
