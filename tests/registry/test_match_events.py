"""Match events: appended in bulk; unknown ids and bad towns are refused whole."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.registry import data
from tests.registry.conftest import TOKEN, Actor

INTERNAL = {"X-Internal-Token": TOKEN}


def event(firm_id: int, product_id: int, **overrides: object) -> dict[str, object]:
    body = {
        "firm_id": firm_id,
        "product_id": product_id,
        "rank": 1,
        "score": 0.42,
        "approval_probability": 0.6,
        "model_version": "prior-1",
        "town_code": "441900116",
    }
    return body | overrides


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM match_event")).scalar_one())


def test_events_recorded_and_bad_batches_refused(
    portal: Actor, bank: Actor, engine: Engine
) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    client = portal.client
    ok = client.post(
        "/internal/match-events",
        json={"events": [event(firm_id, product_id), event(firm_id, product_id, rank=2)]},
        headers=INTERNAL,
    )
    assert ok.status_code == 202
    assert ok.json() == {"recorded": 2}
    for bad, field in [
        (event(firm_id, 999_999), "events"),
        (event(firm_id, product_id, town_code="441900\x00"), "events.0.town_code"),
        (event(firm_id, product_id, score=float("nan")), "events.0.score"),
    ]:
        response = client.post(
            "/internal/match-events",
            content=json.dumps({"events": [bad]}),  # json, unlike httpx, writes NaN
            headers=INTERNAL | {"content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert field in {e["field"] for e in response.json()["errors"]}
    assert count(engine) == 2
    assert client.post("/internal/match-events", json={"events": []}).status_code == 401


def test_a_large_batch_is_recorded_whole_with_one_timestamp(
    portal: Actor, bank: Actor, engine: Engine
) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    events = [
        event(firm_id, product_id, rank=rank, score=rank / 7, approval_probability=None)
        | ({"eligible": False, "degraded": True} if rank % 2 else {})
        for rank in range(1, 801)
    ]
    before = count(engine)
    answer = portal.client.post("/internal/match-events", json={"events": events}, headers=INTERNAL)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"recorded": 800}
    assert count(engine) == before + 800
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT rank, score, approval_probability, eligible, degraded, model_version, "
                "town_code, created_at FROM match_event WHERE firm_id = :firm ORDER BY rank"
            ),
            {"firm": firm_id},
        ).all()
    assert [r.rank for r in rows] == list(range(1, 801))
    assert rows[6].score == 1.0
    assert all(r.approval_probability is None for r in rows)
    assert [bool(r.eligible) for r in rows[:2]] == [False, True]
    assert [bool(r.degraded) for r in rows[:2]] == [True, False]
    assert {(r.model_version, r.town_code) for r in rows} == {("prior-1", "441900116")}
    assert len({r.created_at for r in rows}) == 1
