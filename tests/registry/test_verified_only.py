"""Products that accept an attribute only from an official register (verified_only): set,
changed and refused over the API, kept in the catalogue matching ranks with, and each bad
marking a 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.registry import data
from tests.registry.conftest import TOKEN, Actor


def fields_of(response: Any) -> set[str]:
    assert response.status_code == 422, response.text
    return {error["field"] for error in response.json()["errors"]}


def test_a_product_marks_a_criterion_verified_only_and_the_catalogue_carries_it(
    bank: Actor, other_bank: Actor
) -> None:
    body = data.product(requires_high_tech=True, verified_only=["requires_high_tech"])
    created = bank.post("/v1/products", json=body)
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["verified_only"] == ["requires_high_tech"]
    catalogue = bank.client.get("/internal/catalogue", headers={"X-Internal-Token": TOKEN})
    [listed] = [p for p in catalogue.json()["products"] if p["id"] == product["id"]]
    assert listed["verified_only"] == ["requires_high_tech"]
    # A product without the marking accepts declarations, as before.
    plain = bank.post("/v1/products", json=data.product()).json()
    assert plain["verified_only"] == []
    # Another institution cannot change it: 404, as for any product not its own.
    url = f"/v1/products/{product['id']}"
    assert other_bank.patch(url, json={"verified_only": []}).status_code == 404
    cleared = bank.patch(url, json={"verified_only": []}, headers={"If-Match": '"1"'})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["verified_only"] == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"requires_first_loan": True, "verified_only": ["requires_first_loan"]},  # no register
        {"min_employees": 10, "verified_only": ["min_employees"]},  # not a register's
        {"verified_only": ["requires_nothing"]},  # no such criterion
        {"verified_only": ["requires_green"]},  # a rule the product does not set
        {"verified_only": "requires_green"},  # not a list
    ],
)
def test_a_bad_verified_only_is_422_naming_the_field(
    bank: Actor, overrides: dict[str, Any]
) -> None:
    refused = bank.post("/v1/products", json=data.product(**overrides))
    assert any(field.startswith("verified_only") for field in fields_of(refused))
    assert bank.get("/v1/products").json()["data"] == []  # nothing half-written


def test_dropping_a_rule_still_marked_verified_only_is_refused(bank: Actor) -> None:
    body = data.product(requires_green=True, verified_only=["requires_green"])
    product = bank.post("/v1/products", json=body).json()
    url = f"/v1/products/{product['id']}"
    refused = bank.patch(url, json={"requires_green": False}, headers={"If-Match": '"1"'})
    assert "verified_only" in fields_of(refused)
    assert bank.get(url).json()["requires_green"] is True
