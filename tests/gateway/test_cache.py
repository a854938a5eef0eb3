"""The cache: in-process LRU, real Redis, a dead Redis (closed port, hung server) and recovery."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.exceptions import ResponseError

from services.gateway.cache import (
    FallbackCache,
    LocalCache,
    RedisCache,
    make_cache,
    stamped,
    unstamped,
)
from tests.gateway.redis_helpers import (
    CLOSED_PORT_URL,
    FakeClock,
    RedisProxy,
    healthy,
    raw_redis,
)
from tests.polling import until

# --- in-process -------------------------------------------------------------------------------


def test_without_a_redis_url_the_cache_is_in_process() -> None:
    async def scenario() -> None:
        cache = make_cache(None)
        assert isinstance(cache, LocalCache)
        assert not healthy(cache)  # same health surface as FallbackCache: no Redis in use
        assert not await cache.ping()
        assert await cache.get("k") is None
        await cache.set("k", b"v", 60)
        assert await cache.get("k") == b"v"
        await cache.delete("k", "never-set")
        assert await cache.get("k") is None
        assert [await cache.incr("gen") for _ in range(3)] == [1, 2, 3]
        assert await cache.get("gen") == b"3"  # as in Redis
        await cache.set("other", b"o", 60)
        assert await cache.get_many("gen", "missing", "other") == [b"3", None, b"o"]
        await cache.aclose()

    asyncio.run(scenario())


def test_a_stamped_value_stands_only_under_the_same_versions() -> None:
    value = stamped(b'{"ranked": []}\nline two', "7", "cat-abc", "m-1")
    assert unstamped(value, "7", "cat-abc", "m-1") == b'{"ranked": []}\nline two'
    assert unstamped(value, "8", "cat-abc", "m-1") is None  # the firms changed
    assert unstamped(value, "7", "cat-abd", "m-1") is None  # the catalogue changed
    assert unstamped(value, "7", "cat-abc", "m-2") is None  # another model
    assert unstamped(value, "7", "cat-abc") is None
    assert unstamped(None, "7") is None
    assert unstamped(b"no stamp line at all", "no stamp line at all") is None


def test_local_entries_expire_after_their_ttl() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        cache = LocalCache(clock=clock)
        await cache.set("short", b"s", 1)
        await cache.set("long", b"l", 10)
        clock.advance(0.999)
        assert await cache.get("short") == b"s"
        clock.advance(0.001)
        assert await cache.get("short") is None
        assert await cache.get("long") == b"l"
        clock.advance(9)
        assert await cache.get("long") is None
        assert len(cache) == 0

    asyncio.run(scenario())


def test_local_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    async def scenario() -> None:
        cache = LocalCache(max_entries=3)
        for key in "abc":
            await cache.set(key, key.encode(), 60)
        assert await cache.get("a") == b"a"  # a is now the most recently used
        await cache.set("d", b"d", 60)
        assert await cache.get("b") is None
        assert [await cache.get(key) for key in "acd"] == [b"a", b"c", b"d"]
        await cache.set("c", b"c2", 60)  # overwriting refreshes too
        await cache.set("e", b"e", 60)
        assert await cache.get("a") is None
        assert len(cache) == 3
        for i in range(100):
            await cache.set(f"k{i}", b"x", 60)
        assert len(cache) == 3

    asyncio.run(scenario())


def test_local_counters_never_expire_nor_get_evicted() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        cache = LocalCache(max_entries=2, clock=clock)
        assert await cache.incr("generation") == 1
        for i in range(10):
            await cache.set(f"k{i}", b"x", 1)
        clock.advance(3_600)
        assert await cache.incr("generation") == 2
        await cache.set("n", b"41", 60)  # a stored integer can be incremented, as in Redis
        assert await cache.incr("n") == 42
        await cache.set("generation", b"x", 60)  # and a set replaces a counter
        assert await cache.get("generation") == b"x"

    asyncio.run(scenario())


def test_a_ttl_must_be_positive() -> None:
    async def scenario() -> None:
        for cache in (LocalCache(), make_cache(CLOSED_PORT_URL)):
            for bad in (0, -1, float("nan"), float("inf")):
                with pytest.raises(ValueError, match="ttl_seconds"):
                    await cache.set("k", b"v", bad)
            await cache.aclose()

    asyncio.run(scenario())


# --- real Redis -------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_cache_round_trip_under_the_prefix(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        cache = make_cache(redis_url, prefix=prefix)
        assert isinstance(cache, FallbackCache)
        assert await cache.ping()
        await cache.set("k", b"\x00\xffbinary", 60)
        assert await cache.get("k") == b"\x00\xffbinary"
        raw = raw_redis(redis_url)
        assert raw.get(f"{prefix}k") == b"\x00\xffbinary"
        assert 0 < raw.pttl(f"{prefix}k") <= 60_000
        assert await cache.incr("gen") == 1
        assert await cache.incr("gen") == 2
        assert raw.ttl(f"{prefix}gen") == -1  # counters have no expiry
        # Several keys in one MGET, in the order asked, counters read as Redis stores them.
        assert await cache.get_many("gen", "missing", "k") == [b"2", None, b"\x00\xffbinary"]
        await cache.delete("k", "gen", "missing")
        assert await cache.get("k") is None
        assert raw.exists(f"{prefix}k", f"{prefix}gen") == 0
        assert healthy(cache)
        assert cache.degraded_since is None
        raw.close()
        await cache.aclose()

    asyncio.run(scenario())


@pytest.mark.redis
def test_redis_entries_expire(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        cache = make_cache(redis_url, prefix=prefix)
        await cache.set("brief", b"v", 0.2)
        assert await cache.get("brief") == b"v"
        raw = raw_redis(redis_url)
        assert 0 < raw.pttl(f"{prefix}brief") <= 200
        await until(lambda: not raw.exists(f"{prefix}brief"), timeout=5)  # Redis expired it
        raw.close()
        assert await cache.get("brief") is None
        await cache.aclose()

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_wrong_command_is_a_bug_not_an_outage(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        cache = make_cache(redis_url, prefix=prefix)
        assert isinstance(cache, FallbackCache)
        await cache.set("text", b"not a number", 60)
        with pytest.raises(ResponseError):
            await cache.incr("text")
        assert healthy(cache)
        await cache.aclose()

    asyncio.run(scenario())


# --- Redis down -------------------------------------------------------------------------------


def test_closed_port_degrades_to_local_without_raising_and_fast() -> None:
    async def scenario() -> None:
        cache = make_cache(CLOSED_PORT_URL)
        assert isinstance(cache, FallbackCache)
        assert await cache.get("k") is None  # the first call finds Redis down
        assert not healthy(cache)
        assert cache.degraded_since is not None
        slowest = 0.0
        started = time.perf_counter()
        for i in range(200):
            before = time.perf_counter()
            await cache.set(f"k{i}", b"v", 60)
            assert await cache.get(f"k{i}") == b"v"
            await cache.delete(f"k{i}")
            assert await cache.incr("gen") == i + 1
            assert await cache.get_many("gen", f"k{i}") == [str(i + 1).encode(), None]
            slowest = max(slowest, time.perf_counter() - before)
        assert slowest < 0.5
        assert time.perf_counter() - started < 0.5  # 1,000 calls: no socket work at all
        assert not await cache.ping()
        await cache.aclose()

    asyncio.run(scenario())


@pytest.mark.redis
def test_cache_recovers_after_the_retry_time_and_replays_invalidations(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        await proxy.start()
        clock = FakeClock()
        cache = FallbackCache(RedisCache(proxy.url, prefix=prefix), clock=clock)
        await cache.set("kept", b"1", 60)
        await cache.set("stale", b"old", 60)
        assert await cache.incr("gen") == 1

        await proxy.stop()  # Redis crashes
        assert await cache.get("kept") is None  # answered locally, no exception
        assert not healthy(cache)
        await cache.set("local-only", b"x", 60)
        assert await cache.get("local-only") == b"x"
        await cache.delete("stale")  # invalidations Redis has not seen
        await cache.incr("gen")

        await proxy.start()  # Redis is back, but the (first, short) retry time has not come
        accepted = proxy.accepted
        clock.advance(0.24)
        assert await cache.get("local-only") == b"x"
        assert proxy.accepted == accepted  # not even a connection attempt

        clock.advance(0.01)
        assert await cache.get("kept") == b"1"
        assert healthy(cache)
        assert cache.degraded_since is None
        raw = raw_redis(redis_url)
        assert raw.get(f"{prefix}stale") is None  # the delete was replayed
        assert raw.get(f"{prefix}gen") == b"2"  # and the generation bumped
        assert await cache.get("local-only") is None
        raw.close()

        await proxy.stop()  # a second outage does not resurrect the first one's values
        assert await cache.get("local-only") is None
        assert not healthy(cache)
        await cache.aclose()

    asyncio.run(scenario())


@pytest.mark.redis
def test_after_a_long_outage_redis_is_used_again_within_the_longest_retry_period(
    redis_url: str, prefix: str
) -> None:
    """The retry period backs off (0.25 s, 0.5 s, 1 s, then 2 s at most), never to a long fixed
    hold-off: a Redis that returns is used again within 2 s, whenever it returns."""

    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        await proxy.start()
        clock = FakeClock()
        cache = FallbackCache(RedisCache(proxy.url, prefix=prefix), clock=clock)
        await cache.set("k", b"v", 60)
        await proxy.stop()
        assert await cache.get("k") is None  # the outage starts
        for _ in range(30):  # a minute of outage under steady traffic
            clock.advance(2)
            assert await cache.get("k") is None
        assert not healthy(cache)
        before = proxy.accepted

        await proxy.start()  # back just after a failed probe: the worst moment
        clock.advance(1.99)
        assert await cache.get("k") is None
        assert proxy.accepted == before  # still holding off
        clock.advance(0.01)
        assert await cache.get("k") == b"v"
        assert healthy(cache)

        # The next outage starts again with the short retry period.
        await proxy.stop()
        assert await cache.get("k") is None
        await proxy.start()
        clock.advance(0.25)
        assert await cache.get("k") == b"v"
        await cache.aclose()
        await proxy.stop()

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_redis_that_stops_answering_costs_one_timeout(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        await proxy.start()
        redis_cache = RedisCache(proxy.url, prefix=prefix, connect_timeout=0.2, op_timeout=0.2)
        cache = FallbackCache(redis_cache, clock=FakeClock())
        await cache.set("k", b"v", 60)
        proxy.freeze()  # the open connection stays up, Redis never answers on it
        started = time.perf_counter()
        assert await cache.get("k") is None
        assert time.perf_counter() - started < 0.5  # one op timeout, no client retries
        assert not healthy(cache)
        await cache.aclose()
        await proxy.stop()

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_redis_restart_between_requests_goes_unnoticed(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        await proxy.start()
        cache = FallbackCache(RedisCache(proxy.url, prefix=prefix), clock=FakeClock())
        await cache.set("k", b"v", 60)
        await asyncio.gather(*(cache.get("k") for _ in range(10)))  # ten pooled connections
        await proxy.stop()  # every pooled connection is now closed by the server
        await proxy.start()
        assert await asyncio.gather(*(cache.get("k") for _ in range(10))) == [b"v"] * 10
        assert healthy(cache)
        await cache.aclose()
        await proxy.stop()

    asyncio.run(scenario())


@pytest.mark.redis
def test_reset_connections_cost_one_outage_period_not_one_per_pooled_connection(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        await proxy.start()
        clock = FakeClock()
        cache = FallbackCache(RedisCache(proxy.url, prefix=prefix), clock=clock)
        await cache.set("k", b"v", 60)
        await asyncio.gather(*(cache.get("k") for _ in range(10)))  # ten pooled connections
        await proxy.stop(reset=True)
        await proxy.start()
        await cache.get("k")  # a reset connection may fail once: that starts an outage
        clock.advance(5)
        assert await cache.get("k") == b"v"  # the probe reconnected on a fresh connection
        assert healthy(cache)
        await cache.aclose()
        await proxy.stop()

    asyncio.run(scenario())


@pytest.mark.redis
def test_the_probe_does_not_reuse_connections_to_a_vanished_server(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        await proxy.start()
        clock = FakeClock()
        redis_cache = RedisCache(proxy.url, prefix=prefix, connect_timeout=0.2, op_timeout=0.2)
        cache = FallbackCache(redis_cache, clock=clock)
        await cache.set("k", b"v", 60)
        await asyncio.gather(*(cache.get("k") for _ in range(10)))  # ten pooled connections
        proxy.freeze()  # they all go silent; new connections reach a working Redis
        assert await cache.get("k") is None  # times out: outage
        assert not healthy(cache)
        clock.advance(5)
        assert await cache.get("k") == b"v"  # the probe used a fresh connection
        # and the other silent connections were dropped, not handed out again
        assert await asyncio.gather(*(cache.get("k") for _ in range(10))) == [b"v"] * 10
        assert healthy(cache)
        await cache.aclose()
        await proxy.stop()

    asyncio.run(scenario())


@pytest.mark.redis
def test_ping_reconnects_without_waiting_for_the_retry_time(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        await proxy.start()
        cache = FallbackCache(RedisCache(proxy.url, prefix=prefix), clock=FakeClock())
        await proxy.stop()
        assert not await cache.ping()
        assert not healthy(cache)
        await proxy.start()
        assert await cache.ping()
        assert healthy(cache)
        await cache.aclose()
        await proxy.stop()

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_hung_redis_costs_one_timeout_then_one_probe_per_retry_period(redis_url: str) -> None:
    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        proxy.hang = True
        await proxy.start()
        clock = FakeClock()
        redis_cache = RedisCache(proxy.url, connect_timeout=0.2, op_timeout=0.2)
        cache = FallbackCache(redis_cache, clock=clock)

        started = time.perf_counter()
        assert await cache.get("k") is None
        assert 0.15 < time.perf_counter() - started < 0.5  # bounded by the op timeout
        started = time.perf_counter()
        for _ in range(100):
            await cache.set("k", b"v", 60)
            assert await cache.get("k") == b"v"
        assert time.perf_counter() - started < 0.1

        clock.advance(5)  # time to retry: many concurrent requests, one probe
        accepted = proxy.accepted
        started = time.perf_counter()
        results = await asyncio.gather(*(cache.get("k") for _ in range(20)))
        assert results == [b"v"] * 20
        assert proxy.accepted == accepted + 1
        assert time.perf_counter() - started < 0.5
        assert not healthy(cache)
        await cache.aclose()
        await proxy.stop()

    asyncio.run(scenario())
