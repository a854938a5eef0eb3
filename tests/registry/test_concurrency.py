"""Concurrent writers: no lost or failed writes (SQLite serialises them, PostgreSQL locks rows)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.registry import data
from tests.registry.conftest import Actor


def test_parallel_firm_writes_all_commit(portal: Actor, engine: Engine) -> None:
    def write(seq: int) -> int:
        return portal.post("/v1/firms", json=data.firm(1000 + seq)).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(write, range(64)))
    assert statuses == [201] * 64
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM firm")).scalar_one() == 64


def test_racing_decisions_leave_exactly_one(portal: Actor, bank: Actor, engine: Engine) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    application = portal.post(
        "/v1/applications",
        json={
            "firm_id": firm_id,
            "product_id": product_id,
            "requested_amount_yuan": 1_000_000,
            "requested_term_months": 12,
            "consent_share_profile": True,
        },
    ).json()
    url = f"/v1/applications/{application['id']}/decision"

    def decide(i: int) -> int:
        body = (
            {"outcome": "rejected", "rejection_reason": "other"}
            if i % 2
            else {
                "outcome": "approved",
                "approved_amount_yuan": 900_000,
                "rate_bp": 400,
                "term_months": 12,
            }
        )
        return bank.post(url, json=body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(decide, range(16)))
    assert statuses == [201] + [409] * 15
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM decision")).scalar_one() == 1


def test_racing_identical_applications_leave_one_open(
    portal: Actor, bank: Actor, engine: Engine
) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    product_id = bank.post("/v1/products", json=data.product()).json()["id"]
    body = {
        "firm_id": firm_id,
        "product_id": product_id,
        "requested_amount_yuan": 1_000_000,
        "requested_term_months": 12,
        "consent_share_profile": True,
    }

    def apply(_: int) -> int:
        return portal.post("/v1/applications", json=body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(apply, range(20)))
    assert statuses == [201] + [409] * 19
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM application")).scalar_one() == 1
