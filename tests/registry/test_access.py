"""Keys are stored hashed, resolve to their principal, and stop working when revoked."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.registry.api.access import LAST_USED_INTERVAL
from services.registry.models import ApiKey
from services.registry.models.columns import table_of
from tests.registry.conftest import TOKEN, Actor

INTERNAL = {"X-Internal-Token": TOKEN}


def test_key_shown_once_stored_hashed_and_revocable(
    admin: Actor, portal: Actor, engine: Engine
) -> None:
    created = admin.post("/v1/keys", json={"principal_id": portal.id, "label": "门户A"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert len(key) >= 43  # 32 random bytes, url-safe base64
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_hash, prefix FROM api_key")).one()
    assert key not in stored
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert stored[0] == digest

    resolved = admin.client.post(
        "/internal/auth/resolve", json={"key_hash": digest}, headers=INTERNAL
    )
    assert resolved.status_code == 200
    assert resolved.json()["id"] == portal.id
    assert resolved.json()["role"] == "portal"

    assert admin.post(f"/v1/keys/{created.json()['id']}/revoke").status_code == 200
    revoked = admin.client.post(
        "/internal/auth/resolve", json={"key_hash": digest}, headers=INTERNAL
    )
    assert revoked.status_code == 401


def test_only_admin_manages_keys_and_principals(portal: Actor, bank: Actor) -> None:
    assert portal.post("/v1/keys", json={"principal_id": portal.id}).status_code == 404
    assert bank.post("/v1/principals", json={"role": "admin", "name": "x"}).status_code == 404
    assert portal.post("/v1/institutions", json={"name": "x", "kind": "bank"}).status_code == 404


def test_principal_scope_rules(admin: Actor) -> None:
    no_institution = admin.post("/v1/principals", json={"role": "institution", "name": "x"})
    assert no_institution.status_code == 422
    town_for_portal = admin.post(
        "/v1/principals", json={"role": "portal", "name": "x", "town_code": "441900116"}
    )
    assert town_for_portal.status_code == 422
    bad_town = admin.post(
        "/v1/principals", json={"role": "official", "name": "x", "town_code": "441900999"}
    )
    assert bad_town.status_code == 422
    missing_institution = admin.post(
        "/v1/principals", json={"role": "institution", "name": "x", "institution_id": 999}
    )
    assert missing_institution.status_code == 404


def test_probes(admin: Actor) -> None:
    assert admin.client.get("/healthz").json() == {"status": "ok"}
    ready = admin.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


def test_bootstrap_admin_is_created_once(admin: Actor) -> None:
    first = admin.client.post("/internal/principals/bootstrap-admin", headers=INTERNAL)
    second = admin.client.post("/internal/principals/bootstrap-admin", headers=INTERNAL)
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["role"] == "admin"


def _resolve(client: Any, key: str) -> Any:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return client.post("/internal/auth/resolve", json={"key_hash": digest}, headers=INTERNAL)


def _set(engine: Engine, key_id: int, **columns: Any) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE api_key SET {assignments} WHERE id = :id"), {"id": key_id, **columns}
        )


def _last_used(engine: Engine, key_id: int) -> datetime | None:
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(table_of(ApiKey).c.last_used_at).where(table_of(ApiKey).c.id == key_id)
        ).scalar_one()
    return None if value is None else value.astimezone(UTC)


def test_resolution_says_why_a_key_is_refused(admin: Actor, portal: Actor, engine: Engine) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    created = admin.post(
        "/v1/keys", json={"principal_id": portal.id, "expires_at": later.isoformat()}
    )
    assert created.status_code == 201, created.text
    assert datetime.fromisoformat(created.json()["expires_at"]) == later
    key, key_id = created.json()["key"], created.json()["id"]

    resolved = _resolve(admin.client, key)
    assert resolved.status_code == 200
    assert resolved.json()["key_id"] == key_id
    assert datetime.fromisoformat(resolved.json()["key_expires_at"]) == later

    _set(engine, key_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    expired = _resolve(admin.client, key)
    assert (expired.status_code, expired.json()["code"]) == (401, "key_expired")
    assert admin.post(f"/v1/keys/{key_id}/revoke").status_code == 200
    revoked = _resolve(admin.client, key)
    assert (revoked.status_code, revoked.json()["code"]) == (401, "key_revoked")
    unknown = _resolve(admin.client, "fm_port_never-issued")
    assert (unknown.status_code, unknown.json()["code"]) == (401, "invalid_key")


def test_expires_at_must_lie_ahead(admin: Actor, portal: Actor) -> None:
    for value in ("2001-01-01T00:00:00Z", "2031-01-01T00:00:00", "soon"):
        refused = admin.post("/v1/keys", json={"principal_id": portal.id, "expires_at": value})
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["expires_at"]


def test_last_use_is_written_at_most_once_a_minute(
    admin: Actor, portal: Actor, engine: Engine
) -> None:
    created = admin.post("/v1/keys", json={"principal_id": portal.id})
    key, key_id = created.json()["key"], created.json()["id"]
    assert _last_used(engine, key_id) is None

    before = datetime.now(UTC)
    assert _resolve(admin.client, key).status_code == 200
    first = _last_used(engine, key_id)
    assert first is not None
    assert before <= first <= datetime.now(UTC)
    assert _resolve(admin.client, key).status_code == 200
    assert _last_used(engine, key_id) == first  # within the minute: no write

    almost = datetime.now(UTC) - LAST_USED_INTERVAL + timedelta(seconds=5)
    _set(engine, key_id, last_used_at=almost)
    assert _resolve(admin.client, key).status_code == 200
    assert _last_used(engine, key_id) == almost  # the boundary: not a minute old yet

    stale = datetime.now(UTC) - LAST_USED_INTERVAL
    _set(engine, key_id, last_used_at=stale)
    assert _resolve(admin.client, key).status_code == 200
    written = _last_used(engine, key_id)
    assert written is not None
    assert written > stale

    listed = admin.get("/v1/keys", params={"principal_id": portal.id}).json()["data"]
    assert [(k["id"], datetime.fromisoformat(k["last_used_at"])) for k in listed] == [
        (key_id, written)
    ]


def test_keys_are_listed_to_the_admin_only(admin: Actor, portal: Actor, bank: Actor) -> None:
    mine = admin.post("/v1/keys", json={"principal_id": portal.id, "label": "a"}).json()
    theirs = admin.post("/v1/keys", json={"principal_id": bank.id, "label": "b"}).json()
    everything = admin.get("/v1/keys")
    assert everything.status_code == 200
    assert [k["id"] for k in everything.json()["data"]] == [mine["id"], theirs["id"]]
    assert all("key" not in k and "key_hash" not in k for k in everything.json()["data"])
    only = admin.get("/v1/keys", params={"principal_id": portal.id}).json()["data"]
    assert [k["id"] for k in only] == [mine["id"]]
    for caller in (portal, bank):
        assert caller.get("/v1/keys").status_code == 404
        assert caller.get("/v1/keys", params={"principal_id": caller.id}).status_code == 404
