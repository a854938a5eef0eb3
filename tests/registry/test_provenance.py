"""Provenance of a firm's gating attributes: declared, verified or contradicted by the official
registers, read today (expiry needs no upload), and the effective value matching is served."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.matching.eligibility import CRITERION_INDEX
from services.matching.firm_feed import FirmFeed
from services.matching.registry_client import RegistryClient
from services.registry.registers.provenance import Entry, Listed, provenance_of
from shared.china_date import today_in_china
from shared.enums import RegisterKind
from shared.schemas.internal import FirmFeedPage
from shared.schemas.registers import GATING_FIELDS, add_years
from tests.registry import data
from tests.registry.conftest import TOKEN, Actor, make_principal
from tests.registry.test_applications import apply
from tests.registry.test_registers import answer, upload


@pytest.fixture
def city(admin: Actor) -> Actor:
    return make_principal(admin, "official")


def provenance(portal: Actor, firm_id: int, name: str) -> dict[str, Any]:
    response = portal.get(f"/v1/firms/{firm_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["provenance"][name]
    return found


def new_firm(portal: Actor, seq: int, **overrides: Any) -> int:
    response = portal.post("/v1/firms", json=data.firm(seq, **overrides))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_every_gating_attribute_is_declared_until_a_register_covers_it(portal: Actor) -> None:
    firm = portal.post("/v1/firms", json=data.firm(1, is_high_tech=True)).json()
    assert set(firm["provenance"]) == set(GATING_FIELDS)
    assert firm["provenance"]["is_high_tech"] == {
        "status": "declared",
        "declared": True,
        "value": True,
        "source": None,
        "evidence": [],
        "reason": None,
    }
    assert firm["warnings"] == []


def test_a_listed_firm_is_verified_with_the_register_version_and_date(
    city: Actor, portal: Actor
) -> None:
    firm_id = new_firm(portal, 1, is_specialized_sme=True)
    line = data.register_line("specialized_sme", 1, level="national", year=2025)
    answer(upload(city, "specialized_sme", [line], "s1", as_of="2025-09-30"))
    found = provenance(portal, firm_id, "is_specialized_sme")
    assert found["status"] == "verified"
    assert found["value"] is True
    assert found["source"] == {"kind": "specialized_sme", "version": 1, "as_of": "2025-09-30"}
    assert found["evidence"] == [line | {"level": "national", "year": 2025}]
    assert portal.get(f"/v1/firms/{firm_id}").json()["warnings"] == []


def test_a_declaration_the_register_lacks_is_contradicted_with_a_warning(
    city: Actor, portal: Actor
) -> None:
    firm_id = new_firm(portal, 1, is_green_listed=True)
    answer(upload(city, "green_list", [data.register_line("green_list", 2)], "g1"))
    body = portal.get(f"/v1/firms/{firm_id}").json()
    found = body["provenance"]["is_green_listed"]
    assert (found["status"], found["declared"], found["value"]) == ("contradicted", True, False)
    assert "not in the green enterprise list (version 1" in found["reason"]
    assert body["warnings"] == [
        {"code": "declaration_contradicted", "field": "is_green_listed", "message": found["reason"]}
    ]
    # The other attributes keep their own provenance: no register for them yet.
    assert body["provenance"]["is_high_tech"]["status"] == "declared"


def test_a_register_that_lists_an_undeclared_firm_contradicts_it_and_counts(
    city: Actor, portal: Actor
) -> None:
    firm_id = new_firm(portal, 1)  # declared: not high-tech, no procurement contract
    answer(upload(city, "high_tech", [data.register_line("high_tech", 1)], "h1"))
    awards = [
        data.register_line("gov_procurement_awards", 1, value_yuan=300_000),
        data.register_line("gov_procurement_awards", 1, contract_number="B", value_yuan=50_000),
        # Ended yesterday: no longer counts.
        data.register_line(
            "gov_procurement_awards",
            1,
            contract_number="C",
            value_yuan=9_000_000,
            end_date=(today_in_china() - timedelta(days=1)).isoformat(),
        ),
    ]
    answer(upload(city, "gov_procurement_awards", awards, "p1"))
    high_tech = provenance(portal, firm_id, "is_high_tech")
    assert (high_tech["status"], high_tech["declared"], high_tech["value"]) == (
        "contradicted",
        False,
        True,
    )
    contracts = provenance(portal, firm_id, "gov_procurement_contracts_yuan")
    assert (contracts["status"], contracts["declared"], contracts["value"]) == (
        "contradicted",
        0,
        350_000,
    )
    assert [e["contract_number"] for e in contracts["evidence"]] == ["DGCG-2025-0001", "B"]


def test_first_loan_and_receivables_stay_declared(city: Actor, portal: Actor) -> None:
    firm_id = new_firm(portal, 1, has_borrowed_before=False)
    for kind in ("high_tech", "green_list", "specialized_sme", "gov_procurement_awards"):
        answer(upload(city, kind, [data.register_line(kind, 1)], f"{kind}-1"))
    body = portal.get(f"/v1/firms/{firm_id}").json()["provenance"]
    for name in ("has_borrowed_before", "core_enterprise_receivables_yuan"):
        assert (body[name]["status"], body[name]["source"]) == ("declared", None)
    assert body["has_borrowed_before"]["value"] is False
    assert {body[n]["status"] for n in ("is_high_tech", "is_green_listed")} == {"contradicted"}


# --- expiry: read at each request, from the dates -------------------------------------------


def certificate(last_day: date) -> dict[str, Any]:
    """A high-tech certificate of firm 1 whose last valid day is ``last_day``."""
    issued = add_years(last_day, -3) + timedelta(days=1)
    return data.register_line(
        "high_tech", 1, valid_from=issued.isoformat(), valid_to=last_day.isoformat()
    )


def test_a_certificate_counts_through_its_last_day(city: Actor, portal: Actor) -> None:
    firm_id = new_firm(portal, 1, is_high_tech=True)
    answer(upload(city, "high_tech", [certificate(today_in_china())], "h1"))
    found = provenance(portal, firm_id, "is_high_tech")
    assert (found["status"], found["value"]) == ("verified", True)


def test_a_certificate_past_its_last_day_stops_counting_without_an_upload(
    city: Actor, portal: Actor
) -> None:
    firm_id = new_firm(portal, 1, is_high_tech=True)
    yesterday = today_in_china() - timedelta(days=1)
    answer(upload(city, "high_tech", [certificate(yesterday)], "h1"))
    found = provenance(portal, firm_id, "is_high_tech")
    assert (found["status"], found["value"], found["evidence"]) == ("contradicted", False, [])
    assert f"ended on {yesterday.isoformat()}" in found["reason"]


def test_expiry_is_a_matter_of_the_day_asked() -> None:
    """The same stored entry read on its last day and on the next (no job, no upload)."""
    last_day = date(2026, 11, 30)
    listed = {"high_tech": Listed(RegisterKind.HIGH_TECH, 4, date(2026, 1, 5))}
    entry = Entry("high_tech", date(2023, 12, 1), last_day, None, {"certificate_number": "GR1"})
    declared = dict.fromkeys(GATING_FIELDS, False) | {
        "is_high_tech": True,
        "gov_procurement_contracts_yuan": 0,
        "core_enterprise_receivables_yuan": 0,
    }
    on_the_day = provenance_of(declared, listed, [entry], last_day)["is_high_tech"]
    after = provenance_of(declared, listed, [entry], last_day + timedelta(days=1))["is_high_tech"]
    assert (on_the_day.status, on_the_day.value) == ("verified", True)
    assert (after.status, after.value) == ("contradicted", False)


def test_a_specialized_recognition_holds_three_calendar_years(city: Actor, portal: Actor) -> None:
    this_year = today_in_china().year
    current = new_firm(portal, 1, is_specialized_sme=True)
    lapsed = new_firm(portal, 2, is_specialized_sme=True)
    lines = [
        data.register_line("specialized_sme", 1, year=this_year - 2),
        data.register_line("specialized_sme", 2, year=this_year - 3),
    ]
    answer(upload(city, "specialized_sme", lines, "s1"))
    assert provenance(portal, current, "is_specialized_sme")["status"] == "verified"
    lapsed_found = provenance(portal, lapsed, "is_specialized_sme")
    assert lapsed_found["status"] == "contradicted"
    assert f"ended on {this_year - 1}-12-31" in lapsed_found["reason"]


def test_a_replace_that_drops_the_firm_contradicts_it_from_the_new_version(
    city: Actor, portal: Actor
) -> None:
    firm_id = new_firm(portal, 1, is_high_tech=True)
    answer(upload(city, "high_tech", [data.register_line("high_tech", 1)], "h1"))
    assert provenance(portal, firm_id, "is_high_tech")["status"] == "verified"
    answer(upload(city, "high_tech", [data.register_line("high_tech", 2)], "h2"))
    found = provenance(portal, firm_id, "is_high_tech")
    assert (found["status"], found["source"]["version"]) == ("contradicted", 2)
    # An unpublished upload (refused half-way) changes nothing readers see.
    broken = [data.register_line("high_tech", 1), data.register_line("high_tech", 3, bogus=1)]
    assert upload(city, "high_tech", broken, "h3", batch_size=1).status_code == 422
    assert provenance(portal, firm_id, "is_high_tech")["source"]["version"] == 2
    assert provenance(portal, firm_id, "is_high_tech")["status"] == "contradicted"


# --- every firm answer, and only to those who may read the firm ------------------------------


def test_every_firm_answer_carries_provenance(city: Actor, portal: Actor) -> None:
    answer(upload(city, "green_list", [data.register_line("green_list", 1)], "g1"))
    created = portal.post("/v1/firms", json=data.firm(1, is_green_listed=True))
    assert created.json()["provenance"]["is_green_listed"]["status"] == "verified"
    updated = portal.patch(
        f"/v1/firms/{created.json()['id']}",
        json={"is_green_listed": False},
        headers={"If-Match": "*"},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["provenance"]["is_green_listed"]["status"] == "contradicted"
    assert updated.json()["warnings"][0]["field"] == "is_green_listed"
    [listed] = portal.get("/v1/firms").json()["data"]
    assert listed["provenance"] == updated.json()["provenance"]


def test_another_portal_never_sees_the_provenance(
    city: Actor, portal: Actor, other_portal: Actor, admin: Actor
) -> None:
    firm_id = new_firm(portal, 1, is_green_listed=True)
    answer(upload(city, "green_list", [data.register_line("green_list", 1)], "g1"))
    assert other_portal.get(f"/v1/firms/{firm_id}").status_code == 404
    assert other_portal.get("/v1/firms").json()["data"] == []
    # A city official uploads the registers but reads no firm.
    assert city.get(f"/v1/firms/{firm_id}").status_code == 404


# --- what matching is served -------------------------------------------------------------


def test_the_firm_feed_carries_the_registers_entries_with_their_dates(
    city: Actor, portal: Actor
) -> None:
    claimed = new_firm(portal, 1, is_high_tech=True)  # the register does not list it
    modest = new_firm(portal, 2)  # listed, but did not say so
    untouched = new_firm(portal, 3, gov_procurement_contracts_yuan=5_000)
    before = feed(portal)
    assert before.registers == {}
    assert before.entries["firm_id"] == []
    answer(upload(city, "high_tech", [data.register_line("high_tech", 2)], "h1"))
    page = feed(portal)
    # Declared values as stored; the register beside them, for matching to read by date.
    assert page.columns["is_high_tech"] == [True, False, False]
    assert page.registers == {RegisterKind.HIGH_TECH: 1}
    assert page.entries == {
        "firm_id": [modest],
        "kind": ["high_tech"],
        "starts_on": ["2024-12-01"],
        "ends_on": ["2027-11-30"],
        "amount_yuan": [None],
    }
    assert page.entries_replaced == [RegisterKind.HIGH_TECH]
    # A delta since before the upload replaces the register's entries, though no firm changed.
    delta = feed(portal, changed_since=before.read_at.isoformat())
    assert delta.columns["id"] == []
    assert delta.entries_replaced == [RegisterKind.HIGH_TECH]
    assert delta.entries["firm_id"] == [modest]
    # A later delta carries nothing of it; a firm written since carries its own entries.
    quiet = feed(portal, changed_since=page.read_at.isoformat())
    assert (quiet.entries_replaced, quiet.entries["firm_id"]) == ([], [])
    moved = portal.patch(f"/v1/firms/{modest}", json={"employees": 9}, headers={"If-Match": '"1"'})
    assert moved.status_code == 200, moved.text
    written = feed(portal, changed_since=page.read_at.isoformat())
    assert written.columns["id"] == [modest]
    assert (written.entries_replaced, written.entries["firm_id"]) == ([], [modest])
    assert claimed not in written.entries["firm_id"]
    assert untouched not in written.columns["id"]
    # Procurement contracts carry their value; an id range bounds a replaced register's page.
    answer(
        upload(
            city, "gov_procurement_awards", [data.register_line("gov_procurement_awards", 3)], "p"
        )
    )
    first = feed(portal, limit=2)
    assert first.entries["firm_id"] == [modest]  # firms 1 and 2 only
    rest = feed(portal, after_id=first.next_after_id)
    assert rest.entries["firm_id"] == [untouched]
    assert rest.entries["amount_yuan"] == [1_200_000]
    assert rest.registers == {RegisterKind.HIGH_TECH: 1, RegisterKind.GOV_PROCUREMENT_AWARDS: 1}


def feed(portal: Actor, **params: Any) -> FirmFeedPage:
    response = portal.client.get(
        "/internal/feeds/firms", params=params, headers={"X-Internal-Token": TOKEN}
    )
    assert response.status_code == 200, response.text
    return FirmFeedPage.model_validate_json(response.content)


def test_an_application_snapshot_holds_the_effective_values(
    city: Actor, portal: Actor, bank: Actor, engine: Engine
) -> None:
    firm_id = new_firm(portal, 1, is_high_tech=True)
    answer(upload(city, "high_tech", [data.register_line("high_tech", 2)], "h1"))
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    application = apply(portal, firm_id, product_id)
    with engine.connect() as conn:
        snapshot = conn.execute(
            sa.text("SELECT firm_snapshot FROM application WHERE id = :id"),
            {"id": application["id"]},
        ).scalar_one()
    snapshot = orjson.loads(snapshot) if isinstance(snapshot, str) else snapshot
    assert snapshot["is_high_tech"] is False  # what training will learn from


def test_matchings_firm_columns_agree_with_the_firm_answers_and_expire_by_date(
    city: Actor, portal: Actor
) -> None:
    """The matching service's columns, kept through the feed, read each gating attribute as
    the registry's provenance does; a certificate ending today stops counting tomorrow."""
    today = today_in_china()
    claimed = new_firm(portal, 1, is_high_tech=True)
    listed = new_firm(portal, 2)
    feed_keeper = FirmFeed(overlap_seconds=5)
    registry = RegistryClient("http://registry", TOKEN, transport=forward_to(portal))

    async def read(day: date) -> tuple[list[int], list[bool], list[bool]]:
        async with feed_keeper.current(registry, day) as columns:
            columns.verify_on(day)
            verified = columns.verified[CRITERION_INDEX["requires_high_tech"]]
            return columns.ids.tolist(), columns.field("is_high_tech").tolist(), [bool(verified)]

    assert asyncio.run(read(today)) == ([claimed, listed], [True, False], [False])
    line = data.register_line(
        "high_tech",
        2,
        valid_from=(today - timedelta(days=30)).isoformat(),
        valid_to=today.isoformat(),
    )
    answer(upload(city, "high_tech", [line], "h1"))
    ids, values, verified = asyncio.run(read(today))  # a catch-up: no firm was written
    answers = [provenance(portal, firm_id, "is_high_tech")["value"] for firm_id in ids]
    assert values == answers == [False, True]
    assert verified == [True]
    assert asyncio.run(read(today + timedelta(days=1)))[1] == [False, False]


def forward_to(actor: Actor) -> httpx.MockTransport:
    """An httpx transport that hands each request to the registry app under test."""

    def handle(request: httpx.Request) -> httpx.Response:
        answer = actor.client.request(
            request.method, request.url.path, params=request.url.params, headers=request.headers
        )
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    return httpx.MockTransport(handle)
