"""Firms through the registry API: upsert, read, optimistic update, erase, tenancy."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.registry import data
from tests.registry.conftest import Actor


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


def test_reading_a_firm_opens_no_transaction_on_postgresql(portal: Actor, engine: Engine) -> None:
    """The firm read every uncached match makes runs its statement in autocommit there (no
    BEGIN and ROLLBACK round trips); SQLite keeps its own deferred BEGIN, which locks nothing."""
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    seen: list[bool] = []

    def record(conn: sa.Connection, *_args: object) -> None:
        if "FROM firm" in str(_args[1]):
            seen.append(getattr(conn.connection.dbapi_connection, "autocommit", False) is True)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        read = portal.get(f"/v1/firms/{firm_id}")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert read.status_code == 200
    assert read.headers["ETag"] == '"1"'
    assert read.json()["id"] == firm_id
    assert seen == [engine.dialect.name == "postgresql"]
    with engine.connect() as conn:  # the pool handed the connection back as it was
        assert getattr(conn.connection.dbapi_connection, "autocommit", False) is not True
