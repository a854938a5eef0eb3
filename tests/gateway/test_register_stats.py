"""Officials' coverage of the official registers through the gateway (issue 16, part 5): of the
registered firms on a current list, how many were matched, applied and approved; for the green
list, how many reached green credit (item 44). Exact figures on a small world, tenancy, and bad
query parameters.

The world: firms 1-4 and 6 in 塘厦, firm 5 in 虎门. The green list names 1, 2, 3, 5 and a firm
never registered with us; the high-tech register a valid certificate of 1 and an expired one of
2. Firms 1-3 are matched; 1 is approved for green credit, 2 for an IP-pledge loan; 4 applies to
green credit and is rejected (not listed, so it counts nowhere).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.registry.models import MatchEvent
from services.registry.models.columns import table_of
from shared.china_date import today_in_china
from tests.gateway.conftest import Api, Stack, running_stack
from tests.gateway.test_registers import replace, tail
from tests.polling import wait_until
from tests.registry import data

TANGXIA, HUMEN = "441900116", "441900121"
APPROVE = {
    "outcome": "approved",
    "approved_amount_yuan": 1_000_000,
    "rate_bp": 400,
    "term_months": 12,
}
REJECT = {"outcome": "rejected", "rejection_reason": "insufficient_collateral"}


def _decide(
    bank: Api, portal: Api, firm_id: int, product_id: int, decision: dict[str, Any]
) -> None:
    applied = portal.post("/v1/applications", json=data.application(firm_id, product_id))
    assert applied.status_code == 201, applied.text
    decided = bank.post(
        f"/v1/applications/{applied.json()['id']}/decision",
        json=decision,
    )
    assert decided.status_code == 201, decided.text


@pytest.fixture
def world(engine: Engine) -> Any:
    with running_stack(engine) as stack:
        city, portal = stack.principal("official"), stack.principal("portal")
        bank = stack.institution("东莞绿色银行")
        green = bank.post("/v1/products", json=data.product(name="绿色贷", category="green"))
        ip_loan = bank.post("/v1/products", json=data.product())
        assert green.status_code == ip_loan.status_code == 201, (green.text, ip_loan.text)
        firms: dict[int, int] = {}
        for seq in range(1, 7):
            town = HUMEN if seq == 5 else TANGXIA
            made = portal.post("/v1/firms", json=data.firm(seq, town_code=town))
            assert made.status_code == 201, made.text
            firms[seq] = made.json()["id"]
        listed = [data.register_line("green_list", seq) for seq in (1, 2, 3, 5, 99)]
        assert tail(replace(city, "green_list", listed, "g1"))["upload"]["version"] == 1
        today = today_in_china()
        certificates = [
            data.register_line(
                "high_tech", 1, valid_from=(today - timedelta(days=400)).isoformat()
            ),
            # Three years from its issue: ended long before today.
            data.register_line("high_tech", 2, valid_from="2020-01-01"),
        ]
        assert tail(replace(city, "high_tech", certificates, "h1"))["upload"]["version"] == 1
        for seq in (1, 2, 3):
            matches = portal.get(f"/v1/firms/{firms[seq]}/matches")
            assert matches.status_code == 200, matches.text
            assert matches.json()["ranked"], matches.text  # a match event is recorded
        wait_until(lambda: _firms_matched(engine) == 3)  # the gateway records them in batches
        _decide(bank, portal, firms[1], green.json()["id"], APPROVE)
        _decide(bank, portal, firms[2], ip_loan.json()["id"], APPROVE)
        _decide(bank, portal, firms[4], green.json()["id"], REJECT)
        yield stack


def _firms_matched(engine: Engine) -> int:
    event = table_of(MatchEvent)
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count(sa.distinct(event.c.firm_id)))).scalar_one()
        )


def _figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in ("firms", "matched", "applied", "approved", "green_credit"))


def test_the_city_sees_each_register_and_each_town_exactly(world: Stack) -> None:
    answer = world.principal("official").get("/v1/stats/registers")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["scope"], body["town_code"]) == ("city", None)
    assert body["as_of"] == today_in_china().isoformat()
    totals = {row["kind"]: row for row in body["registers"]}
    assert set(totals) == {"high_tech", "specialized_sme", "green_list", "gov_procurement_awards"}
    # Firm 99 is on the list but not registered; firm 4 applied but is not listed.
    assert _figures(totals["green_list"]) == (4, 3, 2, 2, 1)
    assert (totals["green_list"]["version"], totals["green_list"]["label_zh"]) == (
        1,
        "绿色企业名录",
    )
    # Firm 2's certificate has ended: only firm 1 is on the high-tech list today.
    assert _figures(totals["high_tech"]) == (1, 1, 1, 1, None)
    assert _figures(totals["specialized_sme"]) == (0, 0, 0, 0, None)
    assert totals["specialized_sme"]["version"] is None
    assert not any(row["suppressed"] for row in body["registers"])

    towns = {town["town_code"]: town for town in body["by_town"]}
    assert set(towns) == {TANGXIA, HUMEN}
    assert towns[TANGXIA]["town_zh"] == "塘厦镇"
    tangxia = {row["kind"]: row for row in towns[TANGXIA]["registers"]}
    assert _figures(tangxia["green_list"]) == (3, 3, 2, 2, 1)
    assert tangxia["green_list"]["suppressed"] is False
    # Cells of fewer than three firms are withheld.
    assert tangxia["high_tech"]["suppressed"] is True
    assert _figures(tangxia["high_tech"]) == (None,) * 5
    humen = {row["kind"]: row for row in towns[HUMEN]["registers"]}
    assert humen["green_list"]["suppressed"] is True


def test_one_register_by_kind(world: Stack) -> None:
    body = world.admin.get("/v1/stats/registers", params={"kind": "green_list"}).json()
    assert [row["kind"] for row in body["registers"]] == ["green_list"]
    assert _figures(body["registers"][0]) == (4, 3, 2, 2, 1)
    assert all(len(town["registers"]) == 1 for town in body["by_town"])


def test_a_town_official_sees_their_town_only(world: Stack) -> None:
    tangxia = world.principal("official", town_code=TANGXIA)
    body = tangxia.get("/v1/stats/registers").json()
    assert (body["scope"], body["town_code"]) == ("town", TANGXIA)
    totals = {row["kind"]: row for row in body["registers"]}
    assert _figures(totals["green_list"]) == (3, 3, 2, 2, 1)
    assert [town["town_code"] for town in body["by_town"]] == [TANGXIA]
    same = tangxia.get("/v1/stats/registers", params={"town_code": TANGXIA})
    assert same.json()["registers"] == body["registers"]
    assert tangxia.get("/v1/stats/registers", params={"town_code": HUMEN}).status_code == 404
    humen = world.principal("official", town_code=HUMEN).get("/v1/stats/registers").json()
    assert [town["town_code"] for town in humen["by_town"]] == [HUMEN]
    assert _figures({r["kind"]: r for r in humen["registers"]}["green_list"]) == (1, 0, 0, 0, 0)


def test_the_city_narrows_to_a_town_and_an_unknown_town_is_404(world: Stack) -> None:
    city = world.principal("official")
    body = city.get("/v1/stats/registers", params={"town_code": HUMEN}).json()
    assert [town["town_code"] for town in body["by_town"]] == [HUMEN]
    assert city.get("/v1/stats/registers", params={"town_code": "441900999"}).status_code == 404


@pytest.mark.parametrize("role", ["portal", "institution"])
def test_portals_and_institutions_get_404(world: Stack, role: str) -> None:
    who = world.institution("某银行") if role == "institution" else world.principal(role)
    assert who.get("/v1/stats/registers").status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [({"town_code": "4419001160"}, "town_code"), ({"kind": "black_list"}, "kind")],
)
def test_bad_query_parameters_name_the_field(
    world: Stack, params: dict[str, str], field: str
) -> None:
    answer = world.principal("official").get("/v1/stats/registers", params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field
