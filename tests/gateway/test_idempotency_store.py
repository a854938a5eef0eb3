"""Idempotency keys: the four states, expiry, 50 concurrent claims, on real Redis and in-process,
and what happens while Redis is down and after it comes back."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from services.gateway.idempotency import Begin, BeginState, IdempotencyStore, StoredResponse
from services.gateway.idempotency._store import _Unsynced
from tests.gateway.redis_helpers import (
    CLOSED_PORT_URL,
    FakeClock,
    RedisProxy,
    delete_keys,
    healthy,
    raw_redis,
    unique_prefix,
)
from tests.polling import until
from tests.services import need_redis

CREATED = StoredResponse(
    status=201,
    headers={"Location": "/applications/7", "X-Request-Id": "r-1"},
    body=b'{"id":7,"name":"\xe4\xb8\x9c\xe8\x8e\x9e"}\x00\xff',  # any bytes survive
    media_type="application/json",
)
FAILED = StoredResponse(status=500, headers={}, body=b"", media_type=None)


class Stores:
    """Builds stores on one backend; Redis stores share one prefix, like replicas."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.prefix = unique_prefix()

    @property
    def shared_by_replicas(self) -> bool:
        return self.url is not None

    def __call__(self, **options: Any) -> IdempotencyStore:
        return IdempotencyStore(self.url, prefix=self.prefix, **options)


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def make_store(request: pytest.FixtureRequest) -> Iterator[Stores]:
    stores = Stores(need_redis() if request.param == "redis" else None)
    yield stores
    if stores.url is not None:
        delete_keys(stores.url, stores.prefix)


def state(begin: Begin) -> BeginState:
    return begin.state


def test_new_in_flight_mismatch_replay(make_store: Stores) -> None:
    async def scenario() -> None:
        store = make_store()
        assert await store.begin("principal:1", "key-a", "fp1") == Begin(BeginState.NEW)
        assert state(await store.begin("principal:1", "key-a", "fp1")) is BeginState.IN_FLIGHT
        assert state(await store.begin("principal:1", "key-a", "fp2")) is BeginState.MISMATCH
        await store.complete("principal:1", "key-a", "fp1", CREATED)
        replay = await store.begin("principal:1", "key-a", "fp1")
        assert replay == Begin(BeginState.REPLAY, CREATED)
        assert state(await store.begin("principal:1", "key-a", "fp2")) is BeginState.MISMATCH
        await store.aclose()

    asyncio.run(scenario())


def test_errors_are_replayed_too(make_store: Stores) -> None:
    async def scenario() -> None:
        store = make_store()
        assert state(await store.begin("p", "k", "fp")) is BeginState.NEW
        await store.complete("p", "k", "fp", FAILED)
        assert await store.begin("p", "k", "fp") == Begin(BeginState.REPLAY, FAILED)
        await store.aclose()

    asyncio.run(scenario())


def test_abandon_frees_a_claim_but_never_a_completed_response(make_store: Stores) -> None:
    async def scenario() -> None:
        store = make_store()
        assert state(await store.begin("p", "k", "fp")) is BeginState.NEW
        await store.abandon("p", "k")
        assert state(await store.begin("p", "k", "fp2")) is BeginState.NEW  # free again
        await store.complete("p", "k", "fp2", CREATED)
        await store.abandon("p", "k")
        assert await store.begin("p", "k", "fp2") == Begin(BeginState.REPLAY, CREATED)
        await store.abandon("p", "never-claimed")  # harmless
        await store.aclose()

    asyncio.run(scenario())


def test_the_first_completion_stands(make_store: Stores) -> None:
    async def scenario() -> None:
        store = make_store()
        await store.begin("p", "k", "fp")
        await store.complete("p", "k", "fp", CREATED)
        await store.complete("p", "k", "fp", FAILED)
        assert await store.begin("p", "k", "fp") == Begin(BeginState.REPLAY, CREATED)
        await store.aclose()

    asyncio.run(scenario())


def test_keys_belong_to_their_scope(make_store: Stores) -> None:
    async def scenario() -> None:
        store = make_store()
        assert state(await store.begin("principal:1", "k", "fp")) is BeginState.NEW
        assert state(await store.begin("principal:2", "k", "fp")) is BeginState.NEW
        # A naive "scope:key" would make these two the same key.
        assert state(await store.begin("a:b", "c", "fp")) is BeginState.NEW
        assert state(await store.begin("a", "b:c", "fp")) is BeginState.NEW
        await store.aclose()

    asyncio.run(scenario())


def test_fifty_concurrent_claims_give_exactly_one_new(make_store: Stores) -> None:
    async def scenario() -> None:
        # Five replicas on Redis; the in-process store is only ever right within one process.
        # Generous timeouts when on Redis: 50 connections opening at once on a loaded CI
        # machine may outlast the services' fail-fast 0.5 s; this test is about atomicity.
        patient = {"connect_timeout": 10, "op_timeout": 10} if make_store.shared_by_replicas else {}
        replicas = [make_store(**patient) for _ in range(5 if make_store.shared_by_replicas else 1)]
        begins = await asyncio.gather(
            *(replicas[i % len(replicas)].begin("p", "same-key", "fp") for i in range(50))
        )
        assert Counter(b.state for b in begins) == {
            BeginState.NEW: 1,
            BeginState.IN_FLIGHT: 49,
        }
        for replica in replicas:
            await replica.aclose()

    asyncio.run(scenario())


def test_a_claim_expires_so_a_crashed_request_does_not_block_its_key() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        store = IdempotencyStore(None, in_flight_seconds=120, ttl_seconds=3_600, clock=clock)
        assert state(await store.begin("p", "k", "fp")) is BeginState.NEW
        clock.advance(119.9)
        assert state(await store.begin("p", "k", "fp")) is BeginState.IN_FLIGHT
        clock.advance(0.1)
        assert state(await store.begin("p", "k", "fp")) is BeginState.NEW
        await store.complete("p", "k", "fp", CREATED)
        clock.advance(3_599.9)
        assert state(await store.begin("p", "k", "fp")) is BeginState.REPLAY
        clock.advance(0.1)
        assert state(await store.begin("p", "k", "other")) is BeginState.NEW  # pruned: new

    asyncio.run(scenario())


@pytest.mark.redis
def test_claims_and_responses_expire_on_redis(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        store = IdempotencyStore(redis_url, prefix=prefix, in_flight_seconds=1)
        assert state(await store.begin("p", "k", "fp")) is BeginState.NEW
        raw = raw_redis(redis_url)
        (key,) = raw.scan_iter(match=f"{prefix}*")
        assert 0 < raw.pttl(key) <= 1_000
        await until(lambda: not raw.exists(key), timeout=5)  # the claim expired in Redis
        assert state(await store.begin("p", "k", "fp")) is BeginState.NEW
        await store.complete("p", "k", "fp", CREATED)
        assert 86_395_000 < raw.pttl(key) <= 86_400_000  # kept 24 hours
        raw.close()
        await store.aclose()

    asyncio.run(scenario())


def test_a_late_completion_does_not_overwrite_a_newer_claim() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        store = IdempotencyStore(None, in_flight_seconds=10, clock=clock)
        await store.begin("p", "k", "slow")
        clock.advance(10)  # the slow request's claim expired; another request takes the key
        assert state(await store.begin("p", "k", "other")) is BeginState.NEW
        await store.complete("p", "k", "slow", CREATED)
        assert state(await store.begin("p", "k", "other")) is BeginState.IN_FLIGHT
        await store.complete("p", "k", "other", FAILED)
        assert await store.begin("p", "k", "other") == Begin(BeginState.REPLAY, FAILED)

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_late_completion_does_not_overwrite_a_newer_claim_on_redis(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> None:
        store = IdempotencyStore(redis_url, prefix=prefix)
        await store.begin("p", "k", "slow")
        raw = raw_redis(redis_url)
        (key,) = raw.scan_iter(match=f"{prefix}*")
        raw.delete(key)  # as if the slow request's claim had expired
        assert state(await store.begin("p", "k", "other")) is BeginState.NEW
        await store.complete("p", "k", "slow", CREATED)
        assert state(await store.begin("p", "k", "other")) is BeginState.IN_FLIGHT
        raw.close()
        await store.aclose()

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_damaged_value_refuses_the_key(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        store = IdempotencyStore(redis_url, prefix=prefix)
        await store.begin("p", "k", "fp")
        raw = raw_redis(redis_url)
        (key,) = raw.scan_iter(match=f"{prefix}*")
        raw.set(key, b'D{"f":"fp","s":201}', ex=60)  # no headers, body or media type
        assert state(await store.begin("p", "k", "fp")) is BeginState.MISMATCH
        raw.close()
        await store.aclose()

    asyncio.run(scenario())


def test_keys_must_have_1_to_255_characters() -> None:
    async def scenario() -> None:
        store = IdempotencyStore(None)
        assert state(await store.begin("p", "k" * 255, "fp")) is BeginState.NEW
        for bad in ("", "k" * 256):
            with pytest.raises(ValueError, match="255"):
                await store.begin("p", bad, "fp")

    asyncio.run(scenario())


def test_redis_down_gives_in_process_semantics_without_raising() -> None:
    async def scenario() -> None:
        store = IdempotencyStore(CLOSED_PORT_URL)
        assert state(await store.begin("p", "k", "fp")) is BeginState.NEW
        assert not healthy(store)
        assert store.degraded_since is not None
        slowest = 0.0
        for i in range(100):
            before = time.perf_counter()
            assert state(await store.begin("p", f"k{i}", "fp")) is BeginState.NEW
            assert state(await store.begin("p", f"k{i}", "fp")) is BeginState.IN_FLIGHT
            await store.complete("p", f"k{i}", "fp", CREATED)
            assert state(await store.begin("p", f"k{i}", "fp")) is BeginState.REPLAY
            await store.abandon("p", f"k{i}")
            slowest = max(slowest, time.perf_counter() - before)
        assert slowest < 0.5
        begins = await asyncio.gather(*(store.begin("p", "race", "fp") for _ in range(50)))
        assert Counter(b.state for b in begins) == {BeginState.NEW: 1, BeginState.IN_FLIGHT: 49}
        assert not await store.ping()
        await store.aclose()

    asyncio.run(scenario())


@pytest.mark.redis
def test_keys_claimed_during_an_outage_stay_in_process_after_it(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        await proxy.start()
        clock = FakeClock()
        store = IdempotencyStore(proxy.url, prefix=prefix, clock=clock)
        assert state(await store.begin("p", "before", "fp")) is BeginState.NEW  # in Redis

        await proxy.stop()
        assert state(await store.begin("p", "during", "fp")) is BeginState.NEW  # in-process
        assert not healthy(store)
        await store.complete("p", "before", "fp", FAILED)  # Redis claim, answer kept here

        await proxy.start()
        clock.advance(5)
        assert state(await store.begin("p", "fresh", "fp")) is BeginState.NEW
        assert healthy(store)
        # The claim made during the outage is still honoured, then completed, here.
        assert state(await store.begin("p", "during", "fp")) is BeginState.IN_FLIGHT
        await store.complete("p", "during", "fp", CREATED)
        assert await store.begin("p", "during", "fp") == Begin(BeginState.REPLAY, CREATED)
        assert await store.begin("p", "before", "fp") == Begin(BeginState.REPLAY, FAILED)
        raw = raw_redis(redis_url)
        assert len(list(raw.scan_iter(match=f"{prefix}*"))) == 2  # "before" and "fresh"
        raw.close()
        await store.aclose()
        await proxy.stop()

    asyncio.run(scenario())


@pytest.mark.redis
def test_an_outcome_redis_missed_reaches_it_when_it_answers_again(
    redis_url: str, prefix: str
) -> None:
    """A replica whose completion (or release) of a Redis claim failed writes it to Redis once
    Redis answers: the other replica then replays it (or may run), instead of answering "in
    flight" until the claim expires."""

    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        await proxy.start()
        clock = FakeClock()
        replica_a = IdempotencyStore(proxy.url, prefix=prefix, clock=clock)
        replica_b = IdempotencyStore(redis_url, prefix=prefix)
        assert state(await replica_a.begin("p", "done", "fp")) is BeginState.NEW  # in Redis
        assert state(await replica_a.begin("p", "freed", "fp")) is BeginState.NEW

        await proxy.stop()
        await replica_a.complete("p", "done", "fp", CREATED)  # Redis missed both
        await replica_a.abandon("p", "freed")
        assert replica_a.unsynced == 2
        await proxy.start()
        assert state(await replica_b.begin("p", "done", "fp")) is BeginState.IN_FLIGHT
        assert state(await replica_b.begin("p", "freed", "fp")) is BeginState.IN_FLIGHT

        clock.advance(5)  # past the guard's retry time: replica A's next request syncs
        assert state(await replica_a.begin("p", "other", "fp")) is BeginState.NEW
        assert replica_a.unsynced == 0
        assert await replica_b.begin("p", "done", "fp") == Begin(BeginState.REPLAY, CREATED)
        assert state(await replica_b.begin("p", "freed", "fp")) is BeginState.NEW
        for store in (replica_a, replica_b):
            await store.aclose()
        await proxy.stop()

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_retry_this_replica_replays_from_memory_still_syncs_redis(
    redis_url: str, prefix: str
) -> None:
    """The retry of the very key whose completion Redis missed reaches the replica that holds
    it in memory: it replays from there, and must still write the missed outcome to Redis,
    or the other replica answers "in flight" until the claim expires (CI's redis outage e2e
    test: 409 for the whole 20 s after Redis came back)."""

    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        await proxy.start()
        clock = FakeClock()
        replica_a = IdempotencyStore(proxy.url, prefix=prefix, clock=clock)
        replica_b = IdempotencyStore(redis_url, prefix=prefix)
        assert state(await replica_a.begin("p", "done", "fp")) is BeginState.NEW  # in Redis
        await proxy.stop()
        await replica_a.complete("p", "done", "fp", CREATED)  # Redis missed it
        await proxy.start()
        clock.advance(5)  # past the guard's retry time

        assert await replica_a.begin("p", "done", "fp") == Begin(BeginState.REPLAY, CREATED)
        assert replica_a.unsynced == 0
        assert await replica_b.begin("p", "done", "fp") == Begin(BeginState.REPLAY, CREATED)
        for store in (replica_a, replica_b):
            await store.aclose()
        await proxy.stop()

    asyncio.run(scenario())


def test_an_outcome_past_its_claim_is_not_written_to_redis_late() -> None:
    """Past in_flight_seconds the claim is gone from Redis; a late write could only replace a
    newer request's claim, so the missed outcome is dropped."""

    async def scenario() -> None:
        clock = FakeClock()
        store = IdempotencyStore(CLOSED_PORT_URL, clock=clock, in_flight_seconds=10)
        store._remember("p", "k", _Unsynced("fp", CREATED, clock() + 10))
        clock.advance(11)
        store._guard._retry_at = None  # type: ignore[union-attr]  # as if Redis were back
        await store._sync()  # nothing is sent: the closed port would have failed the call
        assert store.unsynced == 0
        assert healthy(store)
        await store.aclose()

    asyncio.run(scenario())
