"""Pair features: layout, finiteness, values, and sameness across serving and training calls."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pytest

from services.matching.eligibility import evaluate_pairs
from services.matching.features import (
    COLUMN,
    FEATURE_GROUPS,
    FEATURE_NAMES,
    LOG_CLIP,
    USD_TO_CNY,
    pair_features,
)
from services.matching.tables import FirmTable, ProductTable
from services.matching.train import training_set
from shared.china_date import china_date_of
from shared.schemas.firm import FirmFeatures
from shared.schemas.product import ProductFeatures
from shared.types import MAX_COUNT, MAX_USD, MAX_YUAN
from tests.matching.training_data import catalogue_products, export_rows, make_firm

AS_OF = date(2026, 6, 30)
REQUIRED_GROUPS = (
    "revenue_to_amount",
    "leverage",
    "collateral_coverage",
    "years",
    "rating",
    "size",
    "exports",
    "innovation",
    "first_loan",
    "term",
    "amount_cap",
)


def features_for(
    firms: list[FirmFeatures],
    products: list[ProductFeatures],
    amount: float = 1_000_000.0,
    term: float = 12.0,
) -> np.ndarray:
    """Every firm against every product, firm-major, as one batch call."""
    firm_table = FirmTable.from_firms(firms, AS_OF)
    product_table = ProductTable.from_products(products)
    f = np.repeat(np.arange(len(firms)), len(products))
    p = np.tile(np.arange(len(products)), len(firms))
    elig = evaluate_pairs(firm_table, f, product_table, p)
    k = len(f)
    return pair_features(
        firm_table, f, product_table, p, np.full(k, amount), np.full(k, term), elig
    )


def by_category(category: str) -> ProductFeatures:
    return next(p for p in catalogue_products() if p.category == category)


def test_names_and_groups_partition_the_columns() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) == 61
    assert set(REQUIRED_GROUPS) <= set(FEATURE_GROUPS)
    columns = sorted(c for cols in FEATURE_GROUPS.values() for c in cols)
    assert columns == list(range(len(FEATURE_NAMES)))  # every column in exactly one group
    assert [FEATURE_NAMES[c] for c in FEATURE_GROUPS["first_loan"]] == [
        "never_borrowed",
        "never_borrowed_x_first_loan",
    ]
    assert FEATURE_GROUPS["revenue_to_amount"] == (COLUMN["log_revenue_to_amount"],)


def test_shape_and_values_for_a_known_pair() -> None:
    firm = make_firm(annual_revenue_yuan=8_000_000, total_assets_yuan=4_000_000)
    products = catalogue_products()
    x = features_for([firm], products, amount=2_000_000.0, term=48.0)
    assert x.shape == (len(products), len(FEATURE_NAMES))
    row = x[0]
    assert row[COLUMN["log_revenue_to_amount"]] == pytest.approx(math.log(4.0))
    assert row[COLUMN["amount_to_assets"]] == pytest.approx(0.5)
    assert row[COLUMN["term_years"]] == pytest.approx(4.0)
    assert row[COLUMN["term_years_over_3"]] == pytest.approx(1.0)
    # Founded 2015-06-01, seen 2026-06-30: 11 anniversaries, then 29 of the year's 365 days.
    assert firm.established_on == date(2015, 6, 1)
    assert row[COLUMN["log1p_years"]] == pytest.approx(math.log1p(11 + 29 / 365))
    # Exactly one size, category and collateral kind per row.
    for group in ("size", "category"):
        assert (x[:, list(FEATURE_GROUPS[group])].sum(axis=1) == 1.0).all()
    kinds = [c for c in range(len(FEATURE_NAMES)) if FEATURE_NAMES[c].startswith("collateral_")]
    assert (x[:, kinds].sum(axis=1) == 1.0).all()
    assert row[COLUMN["size_small"]] == 1.0
    assert row[COLUMN[f"category_{products[0].category}"]] == 1.0


def test_eligibility_columns_follow_the_rules() -> None:
    firm = make_firm()  # not an exporter, not high-tech
    products = catalogue_products()
    x = features_for([firm], products)
    elig = evaluate_pairs(
        FirmTable.from_firms([firm], AS_OF),
        np.zeros(len(products), dtype=np.int64),
        ProductTable.from_products(products),
        np.arange(len(products)),
    )
    assert np.array_equal(x[:, COLUMN["unmet_criteria"]], elig.unmet_count)
    assert np.array_equal(x[:, COLUMN["eligible"]], elig.eligible)
    guanmaotong = [i for i, p in enumerate(products) if p.category == "guanmaotong"]
    assert (x[guanmaotong, COLUMN["eligible"]] == 0.0).all()  # needs US$10M of exports


def test_interactions_switch_on_only_for_their_category() -> None:
    exporter = make_firm(export_revenue_usd=4_000_000, invention_patents=3, utility_patents=5)
    first_timer = make_firm(has_borrowed_before=False)
    trade, ip, first, green = (
        by_category(c) for c in ("credit_insurance_guarantee", "ip_pledge", "first_loan", "green")
    )
    x = features_for([exporter, first_timer], [trade, ip, first, green])
    e_trade, e_ip, e_first, e_green, f_trade, _f_ip, f_first, f_green = x
    log_export = math.log(4.0)
    assert e_trade[COLUMN["trade_x_log_export_musd"]] == pytest.approx(log_export)
    assert e_green[COLUMN["trade_x_log_export_musd"]] == 0.0
    assert e_green[COLUMN["log_export_musd"]] == pytest.approx(log_export)
    assert f_trade[COLUMN["trade_x_non_exporter"]] == 1.0
    assert e_trade[COLUMN["trade_x_non_exporter"]] == 0.0
    assert e_ip[COLUMN["ip_pledge_x_log1p_patents"]] == pytest.approx(math.log1p(8))
    assert e_trade[COLUMN["ip_pledge_x_log1p_patents"]] == 0.0
    assert f_first[COLUMN["never_borrowed_x_first_loan"]] == 1.0
    assert f_green[COLUMN["never_borrowed_x_first_loan"]] == 0.0
    assert f_green[COLUMN["never_borrowed"]] == 1.0
    assert e_first[COLUMN["never_borrowed_x_first_loan"]] == 0.0


def test_collateral_and_cap_use_the_products_own_basis() -> None:
    firm = make_firm(
        collateral_real_estate_yuan=3_000_000,
        collateral_equipment_yuan=500_000,
        core_enterprise_receivables_yuan=1_000_000,
        export_revenue_usd=100_000,
    )
    receivables = by_category("receivables")  # pledges receivables, capped at a % of them
    trade = by_category("credit_insurance_guarantee")  # capped at a % of exports
    unsecured = by_category("green")
    x = features_for([firm], [receivables, trade, unsecured], amount=2_000_000.0)
    rec, exp, free = x
    assert rec[COLUMN["secured"]] == 1.0
    assert rec[COLUMN["secured_x_log_collateral_to_amount"]] == pytest.approx(math.log(0.5))
    assert free[COLUMN["secured"]] == 0.0
    assert free[COLUMN["secured_x_log_collateral_to_amount"]] == 0.0
    cap = 1_000_000 * receivables.amount_cap_pct / 100
    assert rec[COLUMN["has_cap_x_log_amount_to_cap"]] == pytest.approx(math.log(2_000_000 / cap))
    assert rec[COLUMN["over_cap"]] == 1.0
    export_cap = 100_000 * USD_TO_CNY * trade.amount_cap_pct / 100
    assert exp[COLUMN["has_cap_x_log_amount_to_cap"]] == pytest.approx(
        math.log(2_000_000 / export_cap)
    )
    assert free[COLUMN["has_cap"]] == 0.0
    assert free[COLUMN["over_cap"]] == 0.0


@pytest.mark.parametrize("amount", [1.0, 0.0, float(MAX_YUAN)])
def test_extreme_inputs_stay_finite_and_clipped(amount: float) -> None:
    broke = make_firm(annual_revenue_yuan=0, total_assets_yuan=0, employees=0)
    giant = make_firm(
        annual_revenue_yuan=MAX_YUAN,
        total_assets_yuan=MAX_YUAN,
        export_revenue_usd=MAX_USD,
        invention_patents=MAX_COUNT,
        utility_patents=MAX_COUNT,
        collateral_real_estate_yuan=MAX_YUAN,
        core_enterprise_receivables_yuan=MAX_YUAN,
        gov_procurement_contracts_yuan=MAX_YUAN,
        established_on=date(1900, 1, 1),
        size_class="large",
    )
    newborn = make_firm(established_on=AS_OF)
    x = features_for([broke, giant, newborn], catalogue_products(), amount=amount, term=360)
    assert np.isfinite(x).all()
    assert np.abs(x[:, COLUMN["log_revenue_to_amount"]]).max() <= LOG_CLIP
    assert x[:, COLUMN["amount_to_assets"]].max() <= 5.0
    if amount == MAX_YUAN:
        n = len(catalogue_products())
        assert (x[:n, COLUMN["log_revenue_to_amount"]] == -LOG_CLIP).all()


def test_serving_call_matches_the_batch_call() -> None:
    firms = [
        make_firm(),
        make_firm(export_revenue_usd=20_000_000, size_class="medium", credit_rating="AA"),
        make_firm(has_borrowed_before=False, invention_patents=2, is_high_tech=True),
    ]
    products = catalogue_products()
    n = len(products)
    batch = features_for(firms, products, amount=750_000.0, term=24.0)
    for i, firm in enumerate(firms):
        # What the ranker does: a fresh one-firm table against the whole shelf.
        one = FirmTable.from_firms([firm], AS_OF)
        table = ProductTable.from_products(products)
        zeros, everyone = np.zeros(n, dtype=np.int64), np.arange(n)
        elig = evaluate_pairs(one, zeros, table, everyone)
        serving = pair_features(
            one, zeros, table, everyone, np.full(n, 750_000.0), np.full(n, 24.0), elig
        )
        assert np.array_equal(serving, batch[i * n : (i + 1) * n])


def test_training_rows_match_the_serving_call() -> None:
    rows = export_rows()[:40]
    trained = training_set(rows)
    products = catalogue_products()
    table = ProductTable.from_products(products)
    for k, row in enumerate(rows):
        firm = FirmFeatures.model_validate(row["firm"])
        # Serving dates a firm by today in Dongguan; training by the day in Dongguan it applied.
        as_of = china_date_of(datetime.fromisoformat(row["submitted_at"]))
        one = FirmTable.from_firms([firm], as_of)
        j = np.array([row["product_id"] - 1])  # catalogue ids are positions + 1
        zero = np.zeros(1, dtype=np.int64)
        elig = evaluate_pairs(one, zero, table, j)
        amount = np.array([float(row["requested_amount_yuan"])])
        term = np.array([float(row["requested_term_months"])])
        serving = pair_features(one, zero, table, j, amount, term, elig)
        assert np.array_equal(serving[0], trained.X[k]), f"row {k}"


def test_mismatched_lengths_are_refused() -> None:
    products = ProductTable.from_products(catalogue_products())
    firms = FirmTable.from_firms([make_firm()], AS_OF)
    f, p = np.zeros(3, dtype=np.int64), np.arange(3)
    elig = evaluate_pairs(firms, f, products, p)
    with pytest.raises(ValueError, match="one row per pair"):
        pair_features(firms, f, products, p, np.ones(2), np.ones(3), elig)
