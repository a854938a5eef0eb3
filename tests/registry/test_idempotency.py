"""The registry enforces a forwarded Idempotency-Key in its database: one write per key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.registry import data
from tests.registry.conftest import Actor


def keyed(key: str, fingerprint: str = "f" * 64) -> dict[str, str]:
    return {"Idempotency-Key": key, "X-Idempotency-Fingerprint": fingerprint}


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_a_repeated_key_is_answered_from_the_record(bank: Actor, engine: Engine) -> None:
    first = bank.post("/v1/products", json=data.product(), headers=keyed("k1"))
    again = bank.post("/v1/products", json=data.product(), headers=keyed("k1"))
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["content-type"] == first.headers["content-type"]
    assert count(engine, "product") == 1
    # Without a key, or with another one, the write happens again.
    assert bank.post("/v1/products", json=data.product(), headers=keyed("k2")).status_code == 201
    assert bank.post("/v1/products", json=data.product()).status_code == 201
    assert count(engine, "product") == 3


def test_the_key_with_another_request_is_422(bank: Actor, engine: Engine) -> None:
    assert bank.post("/v1/products", json=data.product(), headers=keyed("k")).status_code == 201
    reused = bank.post("/v1/products", json=data.product(name="另一个"), headers=keyed("k", "0"))
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert reused.json()["errors"][0]["field"] == "Idempotency-Key"
    assert count(engine, "product") == 1


def test_keys_are_per_principal(bank: Actor, other_bank: Actor, engine: Engine) -> None:
    mine = bank.post("/v1/products", json=data.product(), headers=keyed("same"))
    theirs = other_bank.post("/v1/products", json=data.product(), headers=keyed("same"))
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
    assert count(engine, "product") == 2


def test_a_refused_write_is_not_recorded(portal: Actor, engine: Engine) -> None:
    bad = {"firm_id": 999_999, "product_id": 1, "requested_amount_yuan": 1,
           "requested_term_months": 12, "consent_share_profile": True}  # fmt: skip
    assert portal.post("/v1/applications", json=bad, headers=keyed("a")).status_code == 404
    assert count(engine, "idempotency_record") == 0


def test_a_bad_key_names_the_header(bank: Actor) -> None:
    answer = bank.post("/v1/products", json=data.product(), headers=keyed("x" * 256))
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "Idempotency-Key"


def test_concurrent_requests_with_one_key_write_once(bank: Actor, engine: Engine) -> None:
    """What two gateway replicas without a shared Redis send: the same keyed write at once."""

    def create(_: int) -> tuple[int, int]:
        answer = bank.post("/v1/products", json=data.product(), headers=keyed("race"))
        return answer.status_code, answer.json()["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(create, range(16)))
    assert {status for status, _ in answers} == {201}
    assert len({product_id for _, product_id in answers}) == 1
    assert count(engine, "product") == 1
    assert count(engine, "idempotency_record") == 1


def test_concurrent_upserts_with_one_key_answer_alike(portal: Actor, engine: Engine) -> None:
    """A firm upsert racing on its credit code: the loser's conflict becomes the winner's answer."""

    def upsert(_: int) -> tuple[int, bytes]:
        answer = portal.post("/v1/firms", json=data.firm(), headers=keyed("firm"))
        return answer.status_code, answer.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(upsert, range(16)))
    assert {status for status, _ in answers} == {201}
    assert len({body for _, body in answers}) == 1
    assert count(engine, "firm") == 1


def test_a_new_api_key_is_not_kept_in_the_record(admin: Actor, engine: Engine) -> None:
    """The key is shown once: the record keeps no secret, and a repeat is a plain 409."""
    principal = admin.post("/v1/principals", json={"role": "portal", "name": "门户"}).json()
    body = {"principal_id": principal["id"]}
    first = admin.post("/v1/keys", json=body, headers=keyed("key"))
    assert first.status_code == 201, first.text
    assert first.headers["cache-control"] == "no-store"
    again = admin.post("/v1/keys", json=body, headers=keyed("key"))
    assert again.status_code == 409
    assert again.json()["code"] == "idempotency_secret_not_replayed"
    assert count(engine, "api_key") == 1
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT body FROM idempotency_record")).scalar_one()
    assert first.json()["key"].encode() not in bytes(stored)
