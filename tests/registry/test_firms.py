"""Firms through the registry API: upsert, read, optimistic update, erase, tenancy."""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.registry.db import fetch_one
from services.registry.models import Firm
from services.registry.registers.provenance import firm_public
from tests.registry import data
from tests.registry.conftest import Actor
from tests.registry.test_applications import apply, setup_firm_and_product


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_create_then_upsert_updates_same_firm(portal: Actor, engine: Engine) -> None:
    created = portal.post("/v1/firms", json=data.firm())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["size_class"] == "small"  # 45 employees, 1800万 revenue, industry
    assert body["version"] == 1
    assert created.headers["ETag"] == '"1"'

    again = portal.post("/v1/firms", json=data.firm(employees=350, annual_revenue_yuan=90_000_000))
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert again.json()["size_class"] == "medium"
    assert again.json()["version"] == 2
    assert count(engine, "firm") == 1
    with engine.connect() as conn:
        audited = conn.execute(
            sa.text("SELECT action FROM audit_log WHERE entity = 'firm' ORDER BY id")
        ).scalars()
        assert list(audited) == ["create", "update"]


def test_credit_code_is_normalised(portal: Actor) -> None:
    code = data.firm()["credit_code"]
    spaced = f" {code[:6].lower()} {code[6:].lower()} "
    response = portal.post("/v1/firms", json=data.firm(credit_code=spaced))
    assert response.status_code == 201, response.text
    assert response.json()["credit_code"] == code


def test_other_portal_cannot_see_or_take_over_a_firm(portal: Actor, other_portal: Actor) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    assert other_portal.get(f"/v1/firms/{firm_id}").status_code == 404
    assert other_portal.delete(f"/v1/firms/{firm_id}").status_code == 404
    patched = other_portal.patch(
        f"/v1/firms/{firm_id}", json={"employees": 3}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 404
    takeover = other_portal.post("/v1/firms", json=data.firm(name="冒名"))
    assert takeover.status_code == 409
    assert takeover.json()["code"] == "firm_registered_elsewhere"
    assert portal.get(f"/v1/firms/{firm_id}").json()["name"] == data.firm()["name"]
    listed = other_portal.get("/v1/firms").json()
    assert listed["data"] == []


def test_patch_needs_current_version(portal: Actor, engine: Engine) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    missing = portal.patch(f"/v1/firms/{firm_id}", json={"employees": 5})
    assert missing.status_code == 428
    ok = portal.patch(f"/v1/firms/{firm_id}", json={"employees": 5}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.json()["size_class"] == "micro"
    assert ok.json()["version"] == 2
    stale = portal.patch(
        f"/v1/firms/{firm_id}", json={"employees": 500}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "stale_version"
    assert portal.get(f"/v1/firms/{firm_id}").json()["employees"] == 5


def test_patch_rechecks_industry_pairing(portal: Actor) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    response = portal.patch(
        f"/v1/firms/{firm_id}", json={"industry_section": "F"}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 422
    assert "industry" in response.text
    assert portal.get(f"/v1/firms/{firm_id}").json()["version"] == 1


def test_erase_removes_profile(portal: Actor, engine: Engine) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    assert portal.delete(f"/v1/firms/{firm_id}").status_code == 204
    assert portal.get(f"/v1/firms/{firm_id}").status_code == 404
    assert count(engine, "firm") == 0


def test_list_is_paginated(portal: Actor) -> None:
    for seq in range(5):
        assert portal.post("/v1/firms", json=data.firm(seq + 10)).status_code == 201
    first = portal.get("/v1/firms", params={"limit": 2}).json()
    assert len(first["data"]) == 2
    assert first["next_cursor"]
    seen = [f["id"] for f in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = portal.get("/v1/firms", params={"limit": 2, "cursor": cursor}).json()
        seen += [f["id"] for f in page["data"]]
        cursor = page["next_cursor"]
    assert len(seen) == 5 == len(set(seen))


def test_roles_without_firm_access_get_404(portal: Actor, bank: Actor, admin: Actor) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    assert bank.get(f"/v1/firms/{firm_id}").status_code == 404
    assert bank.post("/v1/firms", json=data.firm(2)).status_code == 404
    assert admin.get(f"/v1/firms/{firm_id}").status_code == 200


def test_internal_token_and_principal_required(portal: Actor) -> None:
    client = portal.client
    assert client.get("/v1/firms").status_code == 401
    no_principal = client.get("/v1/firms", headers={"X-Internal-Token": "test-internal-token"})
    assert no_principal.status_code == 401
    wrong = client.get("/v1/firms", headers={"X-Internal-Token": "nope", "X-Principal-Id": "1"})
    assert wrong.status_code == 401


def test_patch_refuses_unknown_and_read_only_fields(portal: Actor, engine: Engine) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    for body, field in [
        ({"credit_code": "91441900000000000X"}, "credit_code"),
        ({"employes": 3}, "employes"),
    ]:
        response = portal.patch(f"/v1/firms/{firm_id}", json=body, headers={"If-Match": '"1"'})
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == [field]
    assert portal.get(f"/v1/firms/{firm_id}").json()["version"] == 1


def test_empty_patch_changes_nothing(portal: Actor, engine: Engine) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    response = portal.patch(f"/v1/firms/{firm_id}", json={}, headers={"If-Match": '"1"'})
    assert response.status_code == 200
    assert response.json()["version"] == 1


def test_if_match_star_and_malformed(portal: Actor) -> None:
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    star = portal.patch(f"/v1/firms/{firm_id}", json={"employees": 9}, headers={"If-Match": "*"})
    assert star.status_code == 200
    assert star.json()["version"] == 2
    for bad in ['"2', "2", "W/2", '"abc"']:
        response = portal.patch(
            f"/v1/firms/{firm_id}", json={"employees": 8}, headers={"If-Match": bad}
        )
        assert response.status_code == 412, bad
    assert portal.get(f"/v1/firms/{firm_id}").json()["employees"] == 9


def _firm_statements(engine: Engine) -> tuple[list[bool], Any]:
    """Each statement on the firm table sent through SQLAlchemy: True if in autocommit."""
    seen: list[bool] = []

    def record(conn: sa.Connection, _cursor: object, statement: str, *_rest: object) -> None:
        if "FROM firm" in statement:
            seen.append(getattr(conn.connection.dbapi_connection, "autocommit", False) is True)

    sa.event.listen(engine, "before_cursor_execute", record)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", record)


def _orm_bytes(engine: Engine, firm_id: int) -> bytes:
    with Session(engine) as session:
        firm = session.get(Firm, firm_id)
        assert firm is not None
        return firm_public(session.connection(), firm).model_dump_json().encode()


def test_a_portal_reads_its_firm_in_one_driver_statement_on_postgresql(
    portal: Actor, other_portal: Actor, admin: Actor, engine: Engine
) -> None:
    """The read every uncached match makes: on PostgreSQL a driver-level statement outside
    any transaction (no ORM, no BEGIN/ROLLBACK), answering what the ORM path answers, byte
    for byte; on SQLite the ORM path. Tenancy is the same on both."""
    sparse = portal.post("/v1/firms", json=data.firm(1, credit_rating=None, need_amount_yuan=None))
    full = portal.post("/v1/firms", json=data.firm(2, export_revenue_usd=3_000_000))
    ids = [sparse.json()["id"], full.json()["id"]]
    # A register that lists firm 2 (twice: two contracts) and not firm 1: both paths read it.
    awards = [
        data.register_line("gov_procurement_awards", 2),
        data.register_line("gov_procurement_awards", 2, contract_number="DGCG-2", value_yuan=7),
    ]
    uploaded = admin.request(
        "PUT",
        "/v1/registers/gov_procurement_awards",
        params={"upload_id": "u"},
        content=b"\n".join(orjson.dumps(line) for line in awards),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert uploaded.status_code == 200, uploaded.text
    seen, stop = _firm_statements(engine)
    try:
        reads = [portal.get(f"/v1/firms/{firm_id}") for firm_id in ids]
        assert admin.get(f"/v1/firms/{ids[0]}").status_code == 200
        assert other_portal.get(f"/v1/firms/{ids[0]}").status_code == 404
        assert portal.get("/v1/firms/987654321").status_code == 404
    finally:
        stop()
    postgres = engine.dialect.name == "postgresql"
    assert seen == ([] if postgres else [False] * 5)
    for firm_id, read in zip(ids, reads, strict=True):
        assert read.status_code == 200
        assert read.headers["ETag"] == '"1"'
        assert read.content == _orm_bytes(engine, firm_id)
    procurement = [r.json()["provenance"]["gov_procurement_contracts_yuan"] for r in reads]
    assert [(p["status"], p["value"], len(p["evidence"])) for p in procurement] == [
        ("verified", 0, 0),
        ("contradicted", 1_200_007, 2),
    ]
    with engine.connect() as conn:  # the pool handed its connections back as they were
        assert getattr(conn.connection.dbapi_connection, "autocommit", False) is not True


def test_an_institution_reads_an_applicant_in_autocommit_on_postgresql(
    portal: Actor, bank: Actor, other_bank: Actor, engine: Engine
) -> None:
    """An institution's access depends on its applications: the ORM path, two statements,
    each on its own snapshot on PostgreSQL (no BEGIN/ROLLBACK round trips)."""
    firm_id, product_id = setup_firm_and_product(portal, bank)
    apply(portal, firm_id, product_id)
    seen, stop = _firm_statements(engine)
    try:
        read = bank.get(f"/v1/firms/{firm_id}")
        assert other_bank.get(f"/v1/firms/{firm_id}").status_code == 404
    finally:
        stop()
    assert read.status_code == 200
    assert read.content == _orm_bytes(engine, firm_id)
    assert seen == [engine.dialect.name == "postgresql"] * 2


@pytest.mark.postgres
def test_a_failed_driver_read_leaves_the_pool_sound(postgres_engine: Engine) -> None:
    """The driver-level read is PostgreSQL's only."""
    engine = postgres_engine
    with pytest.raises(psycopg.errors.UndefinedColumn):
        fetch_one(engine, "SELECT no_such_column FROM firm WHERE id = %s", (1,))
    assert fetch_one(engine, "SELECT 41 + %s AS answer", (1,)) == {"answer": 42}
    assert fetch_one(engine, "SELECT 1 AS one WHERE false", ()) is None
    with engine.connect() as conn:
        assert getattr(conn.connection.dbapi_connection, "autocommit", False) is not True
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
