"""The matching HTTP API: rank requests good and bad, model endpoints, probes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import shared.china_date
from services.matching.main import create_app
from tests.matching import helpers
from tests.matching.conftest import TOKEN, matching_settings, registry_client

H = {"X-Internal-Token": TOKEN}


@pytest.fixture
def client(registry_app: FastAPI) -> Iterator[TestClient]:
    app = create_app(matching_settings(), registry=registry_client(registry_app))
    with TestClient(app) as test_client:
        yield test_client


def body(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "firm": helpers.firm().model_dump(mode="json"),
        "products": [
            helpers.product(id=1).model_dump(mode="json"),
            helpers.guanmaotong(id=2).model_dump(mode="json"),
        ],
    }
    return request | overrides


def test_rank_answers_with_the_prior_before_any_model(client: TestClient) -> None:
    response = client.post("/internal/rank", json=body(), headers=H)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["is_prior"] is True
    assert [r["product_id"] for r in answer["ranked"]] == [1]
    assert answer["near_misses"][0]["product_id"] == 2
    ready = client.get("/readyz").json()
    assert ready["model_version"] == "prior-v1"
    assert client.get("/internal/models/current", headers=H).json()["is_prior"] is True


def test_catalogue_version_can_replace_the_products(client: TestClient) -> None:
    unknown = client.post(
        "/internal/rank", json=body(products=None, catalogue_version="cat-1"), headers=H
    )
    assert unknown.status_code == 409
    assert unknown.json()["code"] == "catalogue_unknown"
    first = client.post("/internal/rank", json=body(catalogue_version="cat-1"), headers=H)
    again = client.post(
        "/internal/rank", json=body(products=None, catalogue_version="cat-1"), headers=H
    )
    assert again.status_code == 200
    assert again.json()["ranked"] == first.json()["ranked"]


def test_empty_and_very_large_catalogues(client: TestClient) -> None:
    empty = client.post("/internal/rank", json=body(products=[]), headers=H)
    assert empty.status_code == 200
    assert empty.json()["ranked"] == []
    many = [helpers.product(id=i + 1).model_dump(mode="json") for i in range(10_000)]
    big = client.post("/internal/rank", json=body(products=many), headers=H)
    assert big.status_code == 200
    assert big.json()["evaluated"] == 10_000
    assert len(big.json()["ranked"]) == 20
    too_many = many * 2 + many[:1]
    refused = client.post("/internal/rank", json=body(products=too_many), headers=H)
    assert refused.status_code == 422
    assert "products" in {e["field"] for e in refused.json()["errors"]}


def _firm(**changes: Any) -> dict[str, Any]:
    return helpers.firm().model_dump(mode="json") | changes


def _product(**changes: Any) -> dict[str, Any]:
    return helpers.product().model_dump(mode="json") | changes


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"products": []}, "firm"),
        ({"firm": _firm(town_code="441900999"), "products": []}, "firm.town_code"),
        ({"firm": _firm(size_class="huge"), "products": []}, "firm.size_class"),
        ({"firm": _firm(annual_revenue_yuan=-1), "products": []}, "firm.annual_revenue_yuan"),
        ({"firm": _firm(need_amount_yuan=0), "products": []}, "firm.need_amount_yuan"),
        ({"firm": _firm(), "products": [_product(category="casino")]}, "products.0.category"),
        (
            {"firm": _firm(), "products": [_product(amount_min_yuan=-5)]},
            "products.0.amount_min_yuan",
        ),
        (
            {"firm": _firm(), "products": [_product(amount_min_yuan=9_000_000, amount_max_yuan=1)]},
            "products.0.amount_min_yuan",
        ),
        ({"firm": _firm(), "products": [_product(rate_max_bp=5000)]}, "products.0.rate_max_bp"),
        (
            {"firm": _firm(), "products": [], "options": {"requested_amount_yuan": -3}},
            "options.requested_amount_yuan",
        ),
        ({"firm": _firm(), "products": [], "options": {"lang": "fr"}}, "options.lang"),
    ],
)
def test_bad_rank_requests_name_the_field(
    client: TestClient, request_body: dict[str, Any], field: str
) -> None:
    response = client.post("/internal/rank", json=request_body, headers=H)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(client: TestClient, bad: str) -> None:
    text = json.dumps(body()).replace(
        '"annual_revenue_yuan": 18000000', f'"annual_revenue_yuan": {bad}'
    )
    response = client.post(
        "/internal/rank", content=text, headers=H | {"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "firm.annual_revenue_yuan"


def test_internal_token_required(client: TestClient) -> None:
    assert client.post("/internal/rank", json=body()).status_code == 401
    assert client.get("/internal/models/current").status_code == 401
    assert client.get("/healthz").status_code == 200


def test_training_without_decisions_is_a_clear_refusal(client: TestClient) -> None:
    response = client.post("/internal/models/train", json={}, headers=H)
    assert response.status_code == 422
    assert response.json()["code"] == "training_refused"
    rollback = client.post("/internal/models/rollback", headers=H)
    assert rollback.status_code == 409
    assert client.post("/internal/models/nope/promote", headers=H).status_code == 404


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_the_openapi_document_describes_the_rank_body(client: TestClient) -> None:
    """The body is parsed by hand (in one step), so its schema is added by hand: every $ref
    must still resolve, and the rank request must name its parts."""
    document = client.get("/openapi.json", headers=H).json()
    schemas = document["components"]["schemas"]
    for ref in set(_refs(document)):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    body = document["paths"]["/internal/rank"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/RankRequest")
    assert {"firm", "products", "catalogue_version", "options"} <= set(
        schemas["RankRequest"]["properties"]
    )
    assert (
        "town_code"
        in schemas[schemas["RankRequest"]["properties"]["firm"]["$ref"].rsplit("/", 1)[1]][
            "properties"
        ]
    )


def test_malformed_rank_json_is_422_naming_the_body(client: TestClient) -> None:
    response = client.post(
        "/internal/rank", content=b'{"firm": ', headers=H | {"content-type": "application/json"}
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "body"
    assert error["message"] == "Invalid JSON: EOF while parsing a value at line 1 column 9"


def test_a_firms_years_count_on_chinas_date(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2030-07-01 01:00 in Dongguan, still 2030-06-30 in UTC (a year away from the real date,
    # so that another clock cannot pass this).
    monkeypatch.setattr(shared.china_date, "_utcnow", lambda: datetime(2030, 6, 30, 17, tzinfo=UTC))
    firm = helpers.firm().model_dump(mode="json") | {"established_on": "2028-07-01"}
    product = helpers.product(id=1).model_dump(mode="json") | {"min_years_established": 2}
    answer = client.post("/internal/rank", json=body(firm=firm, products=[product]), headers=H)
    assert answer.status_code == 200, answer.text
    # Two years to the day in Dongguan (2028-07-01 → 2030-07-01): eligible. On the UTC date
    # (2030-06-30) it would be a day short: a near miss.
    assert [r["product_id"] for r in answer.json()["ranked"]] == [1]
    assert answer.json()["near_misses"] == []
