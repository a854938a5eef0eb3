"""Per-key rate limits: RateLimit-* headers on every answer, 429 with Retry-After past the limit.

Each key has its own fixed window (the role sets the limit); other keys are unaffected. With
Redis the window is shared by every gateway replica, so a key's budget is one budget.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.gateway.conftest import Api, Stack, running_stack
from tests.gateway.redis_helpers import FakeClock
from tests.registry import data
from tests.services import need_redis

LIMIT = 3
TINY = {"rate_limit_portal": LIMIT, "rate_limit_institution": 5, "rate_limit_official": 2}


def limit_headers(answer: httpx.Response) -> tuple[int, int, int]:
    """(limit, remaining, reset); each field must be sent exactly once."""
    values = []
    for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
        sent = answer.headers.get_list(name)
        assert len(sent) == 1, f"{name}: {sent}"
        values.append(int(sent[0]))
    return values[0], values[1], values[2]


def one_redis(**overrides: Any) -> dict[str, Any]:
    """Settings for replicas that share one Redis under a prefix of this test's own."""
    return {
        "redis_url": need_redis(),
        "redis_prefix": f"finmatch-test:{uuid.uuid4().hex}:",
        **overrides,
    }


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
def limited(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Stack]:
    redis_url = need_redis() if request.param == "redis" else None
    with running_stack(engine, redis_url=redis_url, **TINY) as stack:
        yield stack


def test_the_request_past_the_limit_is_429(limited: Stack) -> None:
    portal = limited.principal("portal")
    for remaining in (2, 1, 0):
        ok = portal.get("/v1/firms")
        assert ok.status_code == 200, ok.text
        limit, left, reset = limit_headers(ok)
        assert (limit, left) == (LIMIT, remaining)
        assert 1 <= reset <= 60
        assert "retry-after" not in ok.headers

    refused = portal.get("/v1/firms")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    limit, left, reset = limit_headers(refused)
    assert (limit, left) == (LIMIT, 0)
    assert refused.headers.get_list("retry-after") == [str(reset)]
    assert 1 <= reset <= 60
    # Still refused, whatever the endpoint.
    assert portal.get("/v1/reference/towns").status_code == 429
    assert portal.post("/v1/firms", json=data.firm()).status_code == 429


def test_other_keys_keep_their_budget(limited: Stack) -> None:
    portal = limited.principal("portal")
    neighbour = limited.principal("portal")
    for _ in range(LIMIT + 1):
        portal.get("/v1/firms")
    assert portal.get("/v1/firms").status_code == 429

    fresh = neighbour.get("/v1/firms")
    assert fresh.status_code == 200
    assert limit_headers(fresh)[:2] == (LIMIT, LIMIT - 1)
    # A second key of the same principal is a budget of its own too.
    owner = portal.principal_id  # type: ignore[attr-defined]
    made = limited.admin.post("/v1/admin/keys", json={"principal_id": owner})
    second_key = Api(limited.client, made.json()["key"])
    assert second_key.get("/v1/firms").status_code == 200


def test_each_role_has_its_limit(limited: Stack) -> None:
    official = limited.principal("official", town_code="441900116")
    answers = [official.get("/v1/stats/firms") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert limit_headers(answers[0])[:2] == (2, 1)
    bank = limited.institution("银行")
    assert limit_headers(bank.get("/v1/products"))[:2] == (5, 4)


def test_headers_on_every_authenticated_answer(limited: Stack) -> None:
    portal = limited.principal("portal")
    created = portal.post("/v1/firms", json=data.firm(), headers={"Idempotency-Key": "h"})
    assert created.status_code == 201
    assert limit_headers(created)[:2] == (LIMIT, 2)
    replayed = portal.post("/v1/firms", json=data.firm(), headers={"Idempotency-Key": "h"})
    assert replayed.headers["idempotent-replayed"] == "true"
    assert limit_headers(replayed)[:2] == (LIMIT, 1)  # a replay counts: it is a request
    missing = portal.get("/v1/firms/424242")
    assert missing.status_code == 404
    assert limit_headers(missing)[:2] == (LIMIT, 0)


def test_a_refused_request_changes_nothing(limited: Stack) -> None:
    portal = limited.principal("portal")
    for _ in range(LIMIT):
        portal.get("/v1/firms")
    refused = portal.post("/v1/firms", json=data.firm(), headers={"Idempotency-Key": "later"})
    assert refused.status_code == 429
    with limited.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM firm")).scalar_one() == 0


def test_the_window_resets(engine: Engine) -> None:
    clock = FakeClock()
    with running_stack(
        engine, rate_limit_portal=1, rate_limit_window_seconds=1, clock=clock
    ) as stack:
        portal = stack.principal("portal")
        assert portal.get("/v1/firms").status_code == 200
        refused = portal.get("/v1/firms")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        clock.advance(0.999)
        assert portal.get("/v1/firms").status_code == 429  # the window has not ended
        clock.advance(0.001)
        assert portal.get("/v1/firms").status_code == 200


def test_a_key_without_credentials_is_401_not_429(limited: Stack) -> None:
    for _ in range(LIMIT + 2):
        answer = limited.client.get("/v1/firms")
        assert answer.status_code == 401
        assert "ratelimit-limit" not in answer.headers


@pytest.mark.redis
def test_replicas_sharing_redis_share_a_key_budget(engine: Engine) -> None:
    shared = one_redis(**TINY)
    with running_stack(engine, **shared) as one, running_stack(engine, **shared) as two:
        on_one = one.principal("portal")
        on_two = Api(two.client, on_one.key)
        assert limit_headers(on_one.get("/v1/firms"))[1] == 2
        assert limit_headers(on_two.get("/v1/firms"))[1] == 1
        assert limit_headers(on_one.get("/v1/firms"))[1] == 0
        refused = on_two.get("/v1/firms")
        assert refused.status_code == 429
        assert on_one.get("/v1/firms").status_code == 429
        # Another key on either replica is unaffected.
        other = two.principal("portal")
        assert Api(one.client, other.key).get("/v1/firms").status_code == 200


def test_replicas_without_shared_redis_count_apart(engine: Engine) -> None:
    """The contrast: without Redis each replica counts on its own (documented behaviour)."""
    with running_stack(engine, **TINY) as one, running_stack(engine, **TINY) as two:
        on_one = one.principal("portal")
        on_two = Api(two.client, on_one.key)
        for _ in range(LIMIT):
            assert on_one.get("/v1/firms").status_code == 200
        assert on_one.get("/v1/firms").status_code == 429
        assert on_two.get("/v1/firms").status_code == 200


def _counting_key_lookups(stack: Stack) -> list[tuple[str, ...]]:
    """Every shared-cache read of a key (its principal under the keys generation) from now on."""
    cache = stack.client.app.state.cache  # type: ignore[attr-defined]
    lookups: list[tuple[str, ...]] = []
    original = cache.get_many

    async def get_many(*keys: str) -> list[bytes | None]:
        if any(k.startswith("key:") for k in keys):
            lookups.append(keys)
        return await original(*keys)

    cache.get_many = get_many
    return lookups


@pytest.mark.redis
def test_a_known_key_is_checked_with_its_rate_limit_hit(engine: Engine) -> None:
    """One Redis round trip authenticates and counts a key this replica has seen."""
    with running_stack(engine, redis_url=need_redis()) as stack:
        portal = stack.principal("portal")
        lookups = _counting_key_lookups(stack)
        assert portal.get("/v1/firms").status_code == 200
        assert len(lookups) <= 1  # the admin's key calls above may already have taught it
        lookups.clear()
        for _ in range(3):
            answer = portal.get("/v1/firms")
            assert answer.status_code == 200
        assert lookups == []
        assert int(answer.headers["ratelimit-remaining"]) < int(answer.headers["ratelimit-limit"])


@pytest.mark.redis
def test_a_key_revoked_on_one_replica_is_refused_at_once_by_another(engine: Engine) -> None:
    shared = one_redis()
    with running_stack(engine, **shared) as one, running_stack(engine, **shared) as two:
        holder = one.admin.post("/v1/admin/principals", json={"role": "portal", "name": "撤"})
        assert holder.status_code == 201, holder.text
        made = one.admin.post("/v1/admin/keys", json={"principal_id": holder.json()["id"]})
        assert made.status_code == 201, made.text
        portal = Api(one.client, made.json()["key"])
        for _ in range(2):  # now known to replica one, which no longer reads the key's entry
            assert portal.get("/v1/firms").status_code == 200
        revoked = two.admin.post(f"/v1/admin/keys/{made.json()['id']}/revoke")
        assert revoked.status_code == 200, revoked.text
        refused = portal.get("/v1/firms")
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_key"
