"""Products: institutions own theirs, everyone browses active ones, updates are versioned."""

from __future__ import annotations

from tests.registry import data
from tests.registry.conftest import Actor


def create(bank: Actor, **overrides: object) -> dict[str, object]:
    response = bank.post("/v1/products", json=data.product(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_institution_creates_and_everyone_browses(bank: Actor, portal: Actor) -> None:
    product = create(bank)
    assert product["category"] == "ip_pledge"
    assert product["elig_size_classes"] == ["small", "micro", "medium"]
    listed = portal.get("/v1/products", params={"category": "ip_pledge"}).json()["data"]
    assert [p["id"] for p in listed] == [product["id"]]
    assert portal.get("/v1/products", params={"category": "green"}).json()["data"] == []
    assert portal.get(f"/v1/products/{product['id']}").status_code == 200


def test_town_filter_includes_unrestricted_products(bank: Actor, portal: Actor) -> None:
    everywhere = create(bank, name="全市通用")
    songshanhu = create(bank, name="松山湖专属", elig_town_codes=["441900401"])
    in_park = portal.get("/v1/products", params={"town_code": "441900401"}).json()["data"]
    assert {p["id"] for p in in_park} == {everywhere["id"], songshanhu["id"]}
    elsewhere = portal.get("/v1/products", params={"town_code": "441900116"}).json()["data"]
    assert {p["id"] for p in elsewhere} == {everywhere["id"]}


def test_other_institution_cannot_change_a_product(bank: Actor, other_bank: Actor) -> None:
    product = create(bank)
    url = f"/v1/products/{product['id']}"
    assert other_bank.patch(url, json={"name": "x"}, headers={"If-Match": '"1"'}).status_code == 404
    assert other_bank.delete(url).status_code == 404
    assert bank.get(url).json()["name"] == product["name"]


def test_update_is_versioned_and_rechecks_ranges(bank: Actor) -> None:
    product = create(bank)
    url = f"/v1/products/{product['id']}"
    bad = bank.patch(url, json={"amount_min_yuan": 20_000_000}, headers={"If-Match": '"1"'})
    assert bad.status_code == 422
    assert "amount_min_yuan" in bad.text
    ok = bank.patch(url, json={"rate_max_bp": 500}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.json()["version"] == 2
    assert ok.json()["rate_max_bp"] == 500
    stale = bank.patch(url, json={"rate_max_bp": 600}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412


def test_inactive_products_hidden_from_others(bank: Actor, portal: Actor) -> None:
    product = create(bank, active=False)
    assert portal.get(f"/v1/products/{product['id']}").status_code == 404
    assert portal.get("/v1/products").json()["data"] == []
    assert bank.get(f"/v1/products/{product['id']}").status_code == 200


def test_delete_without_history_removes(bank: Actor, portal: Actor) -> None:
    product = create(bank)
    assert bank.delete(f"/v1/products/{product['id']}").status_code == 204
    assert bank.get(f"/v1/products/{product['id']}").status_code == 404


def test_delete_of_a_product_shown_to_firms_archives_it(bank: Actor, portal: Actor) -> None:
    """Match events (the statistics of what firms were shown) refer to the product: it is
    archived like one with applications, not deleted (the delete broke their foreign key)."""
    product = create(bank)
    firm = portal.post("/v1/firms", json=data.firm()).json()
    event = {
        "firm_id": firm["id"],
        "product_id": product["id"],
        "rank": 1,
        "score": 0.5,
        "model_version": "m-1",
        "town_code": firm["town_code"],
    }
    internal = {"X-Internal-Token": "test-internal-token"}
    recorded = portal.client.post(
        "/internal/match-events", json={"events": [event]}, headers=internal
    )
    assert recorded.status_code == 202, recorded.text
    assert bank.delete(f"/v1/products/{product['id']}").status_code == 204
    assert bank.get(f"/v1/products/{product['id']}").status_code == 404
    assert portal.get("/v1/products").json()["data"] == []


def test_portal_and_official_cannot_create_products(portal: Actor, admin: Actor) -> None:
    assert portal.post("/v1/products", json=data.product()).status_code == 404
    official = admin.post("/v1/principals", json={"role": "official", "name": "镇"}).json()
    actor = Actor(admin.client, official["id"])
    assert actor.post("/v1/products", json=data.product()).status_code == 404


def test_internal_catalogue_lists_active_products_with_a_changing_version(
    bank: Actor, portal: Actor
) -> None:
    internal = {"X-Internal-Token": "test-internal-token"}
    empty = portal.client.get("/internal/catalogue", headers=internal).json()
    assert empty["products"] == []
    product = create(bank)
    create(bank, name="停用", active=False)
    first = portal.client.get("/internal/catalogue", headers=internal).json()
    assert [p["id"] for p in first["products"]] == [product["id"]]
    assert first["products"][0]["min_patents"] == 1
    assert first["version"] != empty["version"]
    bank.patch(
        f"/v1/products/{product['id']}", json={"rate_max_bp": 490}, headers={"If-Match": '"1"'}
    )
    second = portal.client.get("/internal/catalogue", headers=internal).json()
    assert second["version"] != first["version"]
    assert portal.client.get("/internal/catalogue").status_code == 401
