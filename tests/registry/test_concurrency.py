"""Concurrent writers: no lost or failed writes (SQLite serialises them, PostgreSQL locks rows)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
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


@pytest.mark.parametrize("kind", ["firm", "product"])
def test_if_match_star_waits_for_a_concurrent_writer_and_applies_on_top(
    portal: Actor, bank: Actor, engine: Engine, kind: str
) -> None:
    """``If-Match: *`` means "whatever is current": a write committed while it runs is waited
    for, never a 412 (the firm update used to read without a lock and fail its version check)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers never overlap: BEGIN IMMEDIATE serialises them")
    if kind == "firm":
        record_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
        actor, url, change = portal, f"/v1/firms/{record_id}", {"employees": 9}
    else:
        record_id = bank.post("/v1/products", json=data.product()).json()["id"]
        actor, url, change = bank, f"/v1/products/{record_id}", {"rate_max_bp": 500}
    with engine.connect() as other, ThreadPoolExecutor(max_workers=1) as pool:
        # Another writer holds the row, changed and not yet committed.
        other.execute(
            sa.text(f"UPDATE {kind} SET version = version + 1 WHERE id = :id"), {"id": record_id}
        )
        patched = pool.submit(actor.patch, url, json=change, headers={"If-Match": "*"})
        _wait_until_blocked(engine)
        other.commit()
        answer = patched.result(timeout=30)
    assert answer.status_code == 200, answer.text
    assert (answer.headers["ETag"], answer.json()["version"]) == ('"3"', 3)


def _wait_until_blocked(engine: Engine, seconds: float = 20.0) -> None:
    """Until some session of this database waits for a row lock (polled, with a deadline)."""
    deadline = time.monotonic() + seconds
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as conn:
        while conn.execute(query).scalar_one() == 0:
            conn.rollback()  # a fresh snapshot of pg_stat_activity on the next read
            if time.monotonic() > deadline:
                # The PATCH finished without waiting for the lock: the assertions say how.
                return
            time.sleep(0.01)


def test_racing_first_applications_to_one_institution_share_one_consent(
    portal: Actor, bank: Actor, engine: Engine
) -> None:
    """Each of a firm's applications to several products of one bank, all at once, is made,
    under one consent (the first grant wins; the others join it, none is a 409)."""
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    products = [
        bank.post("/v1/products", json=data.product(name=f"产品{i}")).json()["id"] for i in range(6)
    ]

    def apply(product_id: int) -> int:
        body = {
            "firm_id": firm_id,
            "product_id": product_id,
            "requested_amount_yuan": 1_000_000,
            "requested_term_months": 12,
            "consent_share_profile": True,
        }
        return portal.post("/v1/applications", json=body).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(apply, products))
    assert statuses == [201] * 6
    [consent] = portal.get(f"/v1/firms/{firm_id}/consents").json()["data"]
    assert len(consent["application_ids"]) == 6
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM consent")).scalar_one() == 1
