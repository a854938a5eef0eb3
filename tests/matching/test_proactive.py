"""Proactive matching in matching: whom a product's listing or change newly reaches, scored
exactly as a ranking of that firm would score it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.matching.batch import newly_qualified
from services.matching.firm_columns import FirmColumns
from services.matching.policy import Population, reach
from services.matching.ranking import rank_products_for_firm
from services.matching.tables import FirmTable, ProductTable
from shared.schemas.matching import RankOptions
from shared.schemas.product import ProductFeatures
from tests.matching.test_api import H, client  # noqa: F401 - the fixture
from tests.matching.test_batch import AS_OF, SCORERS, catalogue, firms, scorer

EVERYTHING = RankOptions(limit=1_000, near_miss_limit=0)


def reached(product: ProductFeatures, name: str) -> dict[int, Any]:
    """Firm index → its ranked entry, for the firms the product can lend to (per firm)."""
    table = ProductTable.from_products([product])
    out = {}
    for i, firm in enumerate(firms()):
        one = rank_products_for_firm(firm, table, scorer(name), EVERYTHING, as_of=AS_OF)
        if one.ranked and one.ranked[0].cost.amount_yuan > 0:
            out[i] = one.ranked[0]
    return out


@pytest.mark.parametrize("name", list(SCORERS))
def test_a_listing_reaches_every_firm_a_ranking_would_lend_to(name: str) -> None:
    table = FirmTable.from_firms(list(firms()), AS_OF)
    seen = 0
    for product in catalogue().products[:12]:
        found = newly_qualified(table, None, product, scorer(name))
        expected = reached(product, name)
        assert found.firms.tolist() == sorted(expected)
        for k, i in enumerate(found.firms.tolist()):
            ranked = expected[i]
            if ranked.approval_probability is None:
                assert name == "prior"
            else:
                assert found.probability[k] == pytest.approx(ranked.approval_probability, abs=5e-5)
            assert round(float(found.costs.effective_rate_bp[k])) == ranked.cost.effective_rate_bp
            assert round(float(found.costs.offer_amount[k])) == ranked.cost.amount_yuan
        seen += len(expected)
    assert seen > 0


def test_a_change_reaches_only_the_firms_it_newly_admits() -> None:
    table = FirmTable.from_firms(list(firms()), AS_OF)
    base = next(p for p in catalogue().products if len(reached(p, "prior")) >= 2)
    sizes = sorted({firms()[i].employees for i in reached(base, "prior")})
    assert len(sizes) >= 2
    threshold = sizes[len(sizes) // 2]  # admits some of those the product reaches, not all
    strict = ProductFeatures.model_validate(base.model_dump() | {"min_employees": threshold})
    relaxed = base
    before = set(reached(strict, "prior"))
    after = set(reached(relaxed, "prior"))
    assert before
    assert after - before
    found = newly_qualified(table, strict, relaxed, scorer("prior"))
    assert set(found.firms.tolist()) == after - before
    # The same product again reaches no one new; tightened, it reaches no one new either.
    assert newly_qualified(table, relaxed, relaxed, scorer("prior")).firms.size == 0
    assert newly_qualified(table, relaxed, strict, scorer("prior")).firms.size == 0


def _body(**overrides: Any) -> dict[str, Any]:
    chosen = list(firms())[:3]
    body: dict[str, Any] = {
        "after": catalogue().products[0].model_dump(mode="json"),
        "firms": [
            {"id": 100 + i, "features": f.model_dump(mode="json")} for i, f in enumerate(chosen)
        ],
    }
    return body | overrides


def test_the_endpoint_names_the_firms_by_their_ids(client: TestClient) -> None:  # noqa: F811
    answer = client.post("/internal/newly-qualified", json=_body(), headers=H)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["is_prior"] is True
    table = FirmTable.from_firms(list(firms())[:3], AS_OF)
    found = newly_qualified(table, None, catalogue().products[0], scorer("prior"))
    assert [f["firm_id"] for f in result["firms"]] == [100 + i for i in found.firms.tolist()]
    for entry in result["firms"]:
        assert entry["approval_probability"] is None
        assert entry["cost"]["amount_yuan"] > 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"after": None}, "after"),
        ({"firms": [{"id": 0, "features": {}}]}, "firms.0.id"),
        ({"firms": [{"id": 1}]}, "firms.0.features"),
        ({"before": {"id": 1}}, "before.institution_id"),
        ({"firms": [{"id": 1, "features": {}}] * 5_001}, "firms"),
    ],
)
def test_bad_scan_requests_name_the_field(
    client: TestClient,  # noqa: F811
    overrides: dict[str, Any],
    field: str,
) -> None:
    answer = client.post("/internal/newly-qualified", json=_body(**overrides), headers=H)
    assert answer.status_code == 422
    assert field in {e["field"] for e in answer.json()["errors"]}


def test_the_scan_endpoint_needs_the_internal_token(client: TestClient) -> None:  # noqa: F811
    assert client.post("/internal/newly-qualified", json=_body()).status_code == 401


def test_reach_counts_the_eligible_and_the_models_mean_probability() -> None:
    columns = FirmColumns.from_firms(firms(), [True] * len(firms()))
    columns.date_to(AS_OF)
    everyone = Population(columns)
    product = next(p for p in catalogue().products if len(reached(p, "logistic")) >= 3)
    result = reach(everyone, product, scorer("logistic"))
    table_one = ProductTable.from_products([product])
    ranked = []
    for firm in firms():
        one = rank_products_for_firm(firm, table_one, scorer("logistic"), EVERYTHING, as_of=AS_OF)
        if one.eligible:
            ranked.append(one.ranked[0].approval_probability)
    assert result.eligible == len(ranked)
    assert result.expected_approval_share == pytest.approx(sum(ranked) / len(ranked), abs=1e-3)
    assert sum(c["firms"] or 0 for c in result.by_size_class) <= len(ranked)
    assert all(c["firms"] is None or c["firms"] >= 3 for c in result.by_town)
    for criterion in result.criteria:
        assert criterion["binding"] == (
            criterion["suppressed"] or bool(criterion["additional_firms"])
        )
    assert reach(everyone, product, scorer("prior")).expected_approval_share is None
