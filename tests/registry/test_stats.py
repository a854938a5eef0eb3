"""Officials' statistics: figures checked by hand against a small world with known dates.

The world: five firms apply to one bank's product (four in 塘厦, one in 虎门); two firms of
塘厦 are matched but never apply. Timestamps are set in the database so that periods,
months (China time), response times and the working-day deadline are known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.registry.models import MatchEvent
from services.registry.stats import deadline_offsets
from tests.registry import data
from tests.registry.conftest import Actor, make_principal

TANGXIA, HUMEN = "441900116", "441900121"


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (firm seq, town, first loan, outcome, amount approved, rate, submitted, decided)
APPLICATIONS = [
    (1, TANGXIA, False, "approved", 2_000_000, 400, "2026-01-05T02:00", "2026-01-06T02:00"),
    (2, TANGXIA, True, "approved", 1_000_000, 450, "2026-01-05T02:00", "2026-01-15T02:00"),
    # 01:00 on 1 February in China: a February application although it is 31 January in UTC.
    (3, TANGXIA, False, "rejected", None, None, "2026-01-31T17:00", "2026-02-02T17:00"),
    (4, TANGXIA, False, None, None, None, "2026-02-02T02:00", None),
    (5, HUMEN, False, "approved", 1_500_000, 380, "2026-03-02T02:00", "2026-03-03T02:00"),
]


@dataclass
class World:
    firms: dict[int, int]
    product_id: int
    institution_id: int
    tangxia: Actor
    humen: Actor
    city: Actor


@pytest.fixture
def world(portal: Actor, bank: Actor, admin: Actor, engine: Engine) -> World:
    product = bank.post("/v1/products", json=data.product()).json()
    firms: dict[int, int] = {}
    for seq, town, first_loan, *_ in APPLICATIONS:
        body = data.firm(seq, town_code=town, has_borrowed_before=not first_loan)
        firms[seq] = portal.post("/v1/firms", json=body).json()["id"]
    for seq in (6, 7):  # matched, never applied
        firms[seq] = portal.post("/v1/firms", json=data.firm(seq)).json()["id"]
    for seq, _, _, outcome, amount, rate, submitted, decided in APPLICATIONS:
        application = portal.post(
            "/v1/applications",
            json={
                "firm_id": firms[seq],
                "product_id": product["id"],
                "requested_amount_yuan": 2_000_000,
                "requested_term_months": 12,
                "consent_share_profile": True,
            },
        ).json()
        if outcome is not None:
            decision = {"outcome": outcome}
            if outcome == "approved":
                decision |= {"approved_amount_yuan": amount, "rate_bp": rate, "term_months": 12}
            else:
                decision |= {"rejection_reason": "insufficient_revenue"}
            answer = bank.post(f"/v1/applications/{application['id']}/decision", json=decision)
            assert answer.status_code == 201, answer.text
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE application SET submitted_at = :s, decided_at = :d WHERE id = :id"),
                {
                    "s": _utc(submitted),
                    "d": None if decided is None else _utc(decided),
                    "id": application["id"],
                },
            )
    with Session(engine) as session:
        for seq in (1, 2, 3, 4, 6, 7):
            session.add(
                MatchEvent(
                    firm_id=firms[seq],
                    product_id=product["id"],
                    rank=1,
                    score=0.5,
                    model_version="test",
                    town_code=TANGXIA,
                    created_at=_utc("2026-01-04T02:00"),
                )
            )
        session.commit()
    return World(
        firms=firms,
        product_id=product["id"],
        institution_id=product["institution_id"],
        tangxia=make_principal(admin, "official", town_code=TANGXIA),
        humen=make_principal(admin, "official", town_code=HUMEN),
        city=make_principal(admin, "official"),
    )


def test_overview_figures_by_hand(world: World) -> None:
    o = world.city.get("/v1/stats/overview").json()
    assert o["synthetic"] is False
    assert (o["firms_registered"], o["firms_with_need"], o["firms_matched"]) == (7, 7, 6)
    assert (o["applications"], o["approvals"], o["rejections"], o["pending"]) == (5, 3, 1, 1)
    assert o["approval_rate"] == 0.75
    assert o["requested_amount_yuan"] == 10_000_000
    assert o["approved_amount_yuan"] == 4_500_000
    assert (o["first_loan_firms"], o["first_loan_rate"]) == (1, 0.3333)
    assert o["small_micro_share_of_approved"] == 1.0  # every test firm is small
    # Decided after 24, 240, 48 and 24 hours: median 36, p90 by linear interpolation 182.4.
    assert (o["response_hours_median"], o["response_hours_p90"]) == (36.0, 182.4)
    assert o["average_approved_rate_bp"] == 410.0


def test_period_and_category_filters(world: World) -> None:
    feb = world.city.get(
        "/v1/stats/overview", params={"date_from": "2026-02-01", "date_to": "2026-03-01"}
    ).json()
    assert (feb["applications"], feb["rejections"], feb["pending"]) == (2, 1, 1)
    assert feb["approval_rate"] == 0.0
    assert feb["firms_matched"] == 0  # the matches were shown in January
    other = world.city.get("/v1/stats/overview", params={"category": "guanmaotong"}).json()
    assert other["applications"] == 0
    assert other["approval_rate"] is None  # nothing decided: no rate, not 0 %


def test_town_official_sees_only_their_town(world: World) -> None:
    o = world.tangxia.get("/v1/stats/overview").json()
    assert o["filters"]["town_code"] == TANGXIA
    assert (o["applications"], o["firms_registered"]) == (4, 6)
    for path in ("overview", "breakdown?by=town", "institutions", "targets", "coverage/matched"):
        answer = world.tangxia.get(f"/v1/stats/{path}", params={"town_code": HUMEN})
        assert answer.status_code == 404, path
    assert world.humen.get("/v1/stats/overview").json()["applications"] == 1


def test_cells_of_fewer_than_three_firms_are_suppressed(world: World) -> None:
    rows = {r["key"]: r for r in world.city.get("/v1/stats/breakdown?by=town").json()["rows"]}
    assert rows[TANGXIA]["suppressed"] is False
    assert rows[TANGXIA]["label_zh"] == "塘厦镇"
    assert (rows[TANGXIA]["firms"], rows[TANGXIA]["applications"]) == (4, 4)
    humen = rows[HUMEN]
    assert humen["suppressed"] is True
    assert humen["label_en"] == "Humen"
    assert humen["applications"] is None
    assert humen["approved_amount_yuan"] is None
    months = world.city.get("/v1/stats/breakdown?by=month").json()["rows"]
    # China time: the application of 31 January 17:00 UTC is a February one.
    assert [m["key"] for m in months] == ["2026-01", "2026-02", "2026-03"]
    assert all(m["suppressed"] for m in months)
    category = world.city.get("/v1/stats/breakdown?by=category").json()["rows"]
    assert [(c["key"], c["label_zh"], c["firms"]) for c in category] == [
        ("ip_pledge", "知识产权质押", 5)
    ]
    industry = world.city.get("/v1/stats/breakdown?by=industry").json()["rows"]
    assert [(r["key"], r["label_zh"]) for r in industry] == [("C", "制造业")]


def test_league_table_counts_late_and_unanswered(world: World) -> None:
    league = world.city.get("/v1/stats/institutions").json()
    assert league["deadline_working_days"] == 5
    (row,) = league["rows"]
    assert row["institution_id"] == world.institution_id
    assert (row["applications"], row["decided"], row["approved"]) == (5, 4, 3)
    # Late: decided 15 Jan for a 12 Jan deadline; and the February one still unanswered.
    assert (row["overdue"], row["overdue_share"]) == (2, 0.4)
    assert row["small_micro_approved_amount_yuan"] == 4_500_000
    assert row["first_loans"] == 1
    lenient = world.city.get("/v1/stats/institutions", params={"deadline_days": 10}).json()
    assert lenient["rows"][0]["overdue"] == 1  # only the unanswered one


def test_working_day_deadlines() -> None:
    # Friday + 5 working days = the next Friday; a Sunday rolls to Monday first.
    assert deadline_offsets([date(2026, 1, 2), date(2026, 2, 1)], 5) == [
        date(2026, 1, 9),
        date(2026, 2, 9),
    ]


def test_matched_firms_that_never_applied(world: World) -> None:
    rows = world.city.get("/v1/stats/coverage/matched").json()["rows"]
    assert [
        (
            r["town_code"],
            r["industry_section"],
            r["firms_matched"],
            r["firms_matched_no_application"],
        )
        for r in rows
    ] == [(TANGXIA, "C", 6, 2)]


def test_targets_progress(world: World) -> None:
    rows = {r["key"]: r for r in world.city.get("/v1/stats/targets").json()["rows"]}
    firms = rows["firms_registered"]
    assert (firms["target"], firms["current"], firms["plan_item"]) == (5000, 7, 65)
    assert firms["progress"] == 0.0014
    assert firms["met"] is False
    assert rows["credit_granted_yuan"]["current"] == 4_500_000
    # No trade-finance or guarantee lending yet: no share, neither met nor 0 %.
    assert rows["trade_finance_sme_share"]["current"] is None
    assert rows["guarantee_small_agri_share"]["met"] is False
    answer = world.city.get("/v1/stats/targets").json()
    assert answer["scope"] == "city"
    assert {r["key"]: r["measure"] for r in answer["rows"]} == {
        "firms_registered": "total",
        "credit_granted_yuan": "total",
        "trade_finance_sme_share": "share",
        "guarantee_small_agri_share": "share",
    }


def test_a_town_sees_its_contribution_to_the_city_targets(world: World) -> None:
    """The plan sets its targets for the city: a town's firms are a part of the city's total,
    neither "met" nor "not met", while a town's share is compared with the city's threshold."""
    answer = world.tangxia.get("/v1/stats/targets").json()
    assert (answer["scope"], answer["town_code"]) == ("town", TANGXIA)
    town = {r["key"]: r for r in answer["rows"]}
    firms = town["firms_registered"]
    assert (firms["current"], firms["target"], firms["measure"]) == (6, 5000, "contribution")
    assert firms["progress"] == 0.0012
    assert firms["met"] is None
    assert town["credit_granted_yuan"]["measure"] == "contribution"
    assert town["credit_granted_yuan"]["met"] is None
    assert town["guarantee_small_agri_share"]["measure"] == "share"
    assert town["guarantee_small_agri_share"]["met"] is False
    # A city official filtering on the town gets the same contribution.
    filtered = world.city.get("/v1/stats/targets", params={"town_code": TANGXIA}).json()
    assert filtered["rows"] == answer["rows"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "2026-03-01", "date_to": "2026-02-01"}, "date_to"),
        ({"date_from": "1850-01-01"}, "date_from"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"category": "payday"}, "category"),
        ({"deadline_days": "0"}, "deadline_days"),
    ],
)
def test_bad_filters_name_the_field(world: World, params: dict[str, str], field: str) -> None:
    answer = world.city.get("/v1/stats/institutions", params=params)
    assert answer.status_code == 422, answer.text
    assert field in answer.text


def test_other_roles_cannot_read_statistics(world: World, portal: Actor, bank: Actor) -> None:
    for who in (portal, bank):
        assert who.get("/v1/stats/overview").status_code == 404
    assert (
        world.city.get("/v1/stats/overview", params={"town_code": "441900999"}).status_code == 404
    )
