"""Applications: consent, snapshots, the status machine, institutions' view, decisions, export."""

from __future__ import annotations

import orjson

from tests.registry import data
from tests.registry.conftest import Actor


def setup_firm_and_product(portal: Actor, bank: Actor) -> tuple[int, int]:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    return firm_id, product_id


def apply(portal: Actor, firm_id: int, product_id: int, **overrides: object) -> dict[str, object]:
    body = {
        "firm_id": firm_id,
        "product_id": product_id,
        "requested_amount_yuan": 2_000_000,
        "requested_term_months": 12,
        "consent_share_profile": True,
    } | overrides
    response = portal.post("/v1/applications", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


def test_apply_shares_profile_with_that_institution_only(
    portal: Actor, bank: Actor, other_bank: Actor
) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    assert bank.get(f"/v1/firms/{firm_id}").status_code == 404  # no application yet
    application = apply(portal, firm_id, product_id)
    assert application["status"] == "submitted"
    assert application["size_class"] == "small"
    assert bank.get(f"/v1/firms/{firm_id}").status_code == 200
    assert other_bank.get(f"/v1/firms/{firm_id}").status_code == 404
    assert other_bank.get(f"/v1/applications/{application['id']}").status_code == 404
    leads = bank.get("/v1/applications").json()["data"]
    assert [a["id"] for a in leads] == [application["id"]]
    assert other_bank.get("/v1/applications").json()["data"] == []


def test_withdrawal_withdraws_consent(portal: Actor, bank: Actor) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    application = apply(portal, firm_id, product_id)
    withdrawn = portal.post(f"/v1/applications/{application['id']}/withdraw")
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["consent_withdrawn_at"] is not None
    assert bank.get(f"/v1/firms/{firm_id}").status_code == 404
    again = portal.post(f"/v1/applications/{application['id']}/withdraw")
    assert again.status_code == 409
    decide = bank.post(
        f"/v1/applications/{application['id']}/decision",
        json={"outcome": "rejected", "rejection_reason": "other"},
    )
    assert decide.status_code == 409


def test_decision_flow_and_single_decision(portal: Actor, bank: Actor, other_bank: Actor) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    application = apply(portal, firm_id, product_id)
    url = f"/v1/applications/{application['id']}/decision"
    approval = {
        "outcome": "approved",
        "approved_amount_yuan": 1_500_000,
        "rate_bp": 420,
        "term_months": 12,
    }
    assert other_bank.post(url, json=approval).status_code == 404
    assert portal.post(url, json=approval).status_code == 404
    decided = bank.post(url, json=approval)
    assert decided.status_code == 201, decided.text
    assert decided.json()["approved_amount_yuan"] == 1_500_000
    second = bank.post(url, json={"outcome": "rejected", "rejection_reason": "other"})
    assert second.status_code == 409
    assert bank.get(url).json()["outcome"] == "approved"
    assert portal.get(f"/v1/applications/{application['id']}").json()["status"] == "approved"


def test_one_open_application_per_product(portal: Actor, bank: Actor) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    apply(portal, firm_id, product_id)
    duplicate = portal.post(
        "/v1/applications",
        json={
            "firm_id": firm_id,
            "product_id": product_id,
            "requested_amount_yuan": 1_000_000,
            "requested_term_months": 12,
            "consent_share_profile": True,
        },
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "application_open"


def test_snapshot_keeps_what_the_bank_saw(portal: Actor, bank: Actor, admin: Actor) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    application = apply(portal, firm_id, product_id)
    bank.post(
        f"/v1/applications/{application['id']}/decision",
        json={"outcome": "rejected", "rejection_reason": "insufficient_revenue"},
    )
    # The firm grows afterwards; the training row must still show the old profile.
    portal.patch(f"/v1/firms/{firm_id}", json={"employees": 900}, headers={"If-Match": '"1"'})
    bank.patch(f"/v1/products/{product_id}", json={"rate_min_bp": 100}, headers={"If-Match": '"1"'})
    export = portal.client.get(
        "/internal/exports/training", headers={"X-Internal-Token": "test-internal-token"}
    )
    assert export.status_code == 200
    rows = [orjson.loads(line) for line in export.content.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["firm"]["employees"] == 45
    assert row["firm"]["size_class"] == "small"
    assert "name" not in row["firm"]
    assert "credit_code" not in row["firm"]
    assert row["product"]["rate_min_bp"] == 350
    assert row["approved"] is False
    assert row["rejection_reason"] == "insufficient_revenue"


def test_erased_firm_keeps_anonymous_history(portal: Actor, bank: Actor) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    application = apply(portal, firm_id, product_id)
    assert portal.delete(f"/v1/firms/{firm_id}").status_code == 204
    kept = bank.get(f"/v1/applications/{application['id']}").json()
    assert kept["firm_id"] is None
    assert kept["town_code"] == "441900116"


def test_stats_breakdown_scoped_to_official_town(portal: Actor, bank: Actor, admin: Actor) -> None:
    firm_id, product_id = setup_firm_and_product(portal, bank)
    application = apply(portal, firm_id, product_id)
    bank.post(
        f"/v1/applications/{application['id']}/decision",
        json={
            "outcome": "approved",
            "approved_amount_yuan": 2_000_000,
            "rate_bp": 400,
            "term_months": 12,
        },
    )
    tangxia = admin.post(
        "/v1/principals", json={"role": "official", "name": "塘厦", "town_code": "441900116"}
    ).json()
    humen = admin.post(
        "/v1/principals", json={"role": "official", "name": "虎门", "town_code": "441900121"}
    ).json()
    tangxia_actor, humen_actor = (
        Actor(admin.client, tangxia["id"]),
        Actor(admin.client, humen["id"]),
    )
    rows = tangxia_actor.get("/v1/stats/breakdown", params={"by": "category"}).json()["rows"]
    # One firm: the cell is there, its figures withheld (tests/registry/test_stats.py has more).
    assert [(r["key"], r["suppressed"], r["applications"]) for r in rows] == [
        ("ip_pledge", True, None)
    ]
    assert humen_actor.get("/v1/stats/breakdown", params={"by": "category"}).json()["rows"] == []
    other_town = humen_actor.get(
        "/v1/stats/breakdown", params={"by": "town", "town_code": "441900116"}
    )
    assert other_town.status_code == 404
    assert portal.get("/v1/stats/breakdown", params={"by": "town"}).status_code == 404
    by_month = admin.get("/v1/stats/breakdown", params={"by": "month"}).json()["rows"]
    assert len(by_month) == 1
    assert by_month[0]["suppressed"] is True
