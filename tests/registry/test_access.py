"""Keys are stored hashed, resolve to their principal, and stop working when revoked."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Engine

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
