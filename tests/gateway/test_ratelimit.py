"""Rate limits: window semantics and headers in-process and on real Redis, atomicity across
replicas, and the in-process fallback when Redis is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from services.gateway.ratelimit import RateDecision, RateLimiter
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


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def limiter_url(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, str]]:
    """(redis_url or None, key prefix) for each backend; the Redis keys are deleted afterwards."""
    prefix = unique_prefix()
    if request.param == "local":
        yield None, prefix
        return
    url = need_redis()
    yield url, prefix
    delete_keys(url, prefix)


def test_limit_counts_down_then_refuses(limiter_url: tuple[str | None, str]) -> None:
    async def scenario() -> None:
        url, prefix = limiter_url
        limiter = RateLimiter(url, prefix=prefix)
        decisions = [await limiter.hit("firm:42", 3, 60) for _ in range(5)]
        assert [d.allowed for d in decisions] == [True, True, True, False, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
        assert {d.limit for d in decisions} == {3}
        assert all(1 <= d.reset_seconds <= 60 for d in decisions)
        other = await limiter.hit("firm:43", 3, 60)  # buckets are independent
        assert other.allowed
        assert other.remaining == 2
        assert healthy(limiter) is (url is not None)
        await limiter.aclose()

    asyncio.run(scenario())


def test_the_window_resets_in_process() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        limiter = RateLimiter(None, clock=clock)
        assert (await limiter.hit("b", 2, 10)).reset_seconds == 10
        clock.advance(3.5)
        second = await limiter.hit("b", 2, 10)
        assert second.reset_seconds == 7  # 6.5 s left, rounded up
        clock.advance(6.4)
        refused = await limiter.hit("b", 2, 10)
        assert not refused.allowed
        assert refused.reset_seconds == 1  # 0.1 s left: never 0
        clock.advance(0.1)
        fresh = await limiter.hit("b", 2, 10)
        assert fresh.allowed
        assert fresh.remaining == 1
        assert fresh.reset_seconds == 10

    asyncio.run(scenario())


@pytest.mark.redis
def test_the_window_resets_on_redis_and_the_counter_always_expires(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> None:
        limiter = RateLimiter(redis_url, prefix=prefix)
        first = await limiter.hit("b", 1, 1)
        assert first.allowed
        assert first.reset_seconds == 1
        assert not (await limiter.hit("b", 1, 1)).allowed
        raw = raw_redis(redis_url)
        keys = list(raw.scan_iter(match=f"{prefix}*"))
        assert len(keys) == 1
        assert 0 < raw.pttl(keys[0]) <= 1_000
        await until(lambda: not raw.exists(keys[0]), timeout=5)  # the window ended in Redis
        again = await limiter.hit("b", 1, 1)
        assert again.allowed
        assert again.remaining == 0

        # A counter that lost its expiry (written by hand here) gets one on the next hit.
        raw.set(keys[0], 99)
        assert raw.ttl(keys[0]) == -1
        assert not (await limiter.hit("b", 1, 1)).allowed
        assert 0 < raw.pttl(keys[0]) <= 1_000
        raw.close()
        await limiter.aclose()

    asyncio.run(scenario())


@pytest.mark.redis
def test_replicas_share_one_atomic_count(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        # Generous timeouts: this is about atomicity, and 100 connections opening at once on a
        # loaded CI machine can take longer than the services' fail-fast 0.5 s.
        replicas = [
            RateLimiter(redis_url, prefix=prefix, connect_timeout=10, op_timeout=10)
            for _ in range(5)
        ]
        decisions = await asyncio.gather(
            *(replicas[i % 5].hit("shared", 30, 60) for i in range(100))
        )
        assert sum(d.allowed for d in decisions) == 30
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(30))
        for replica in replicas:
            await replica.aclose()

    asyncio.run(scenario())


def test_headers() -> None:
    allowed = RateDecision(allowed=True, limit=10, remaining=4, reset_seconds=17)
    assert allowed.headers() == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "4",
        "RateLimit-Reset": "17",
    }
    refused = RateDecision(allowed=False, limit=10, remaining=0, reset_seconds=17)
    assert refused.headers() == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "17",
        "Retry-After": "17",
    }


def test_a_limit_of_zero_refuses_and_bad_arguments_raise() -> None:
    async def scenario() -> None:
        limiter = RateLimiter(None)
        assert not (await limiter.hit("b", 0, 60)).allowed
        with pytest.raises(ValueError, match="window_seconds"):
            await limiter.hit("b", 5, 0)
        with pytest.raises(ValueError, match="limit"):
            await limiter.hit("b", -1, 60)

    asyncio.run(scenario())


def test_expired_windows_are_swept() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        limiter = RateLimiter(None, clock=clock)
        for i in range(1_000):
            await limiter.hit(f"ip:{i}", 10, 1)
        assert len(limiter._local) == 1_000
        clock.advance(61)
        await limiter.hit("ip:new", 10, 1)
        assert len(limiter._local) == 1

    asyncio.run(scenario())


def test_redis_down_falls_back_to_in_process_limits_without_raising() -> None:
    async def scenario() -> None:
        limiter = RateLimiter(CLOSED_PORT_URL)
        first = await limiter.hit("b", 3, 60)  # finds Redis down, answers anyway
        assert first.allowed
        assert not healthy(limiter)
        assert limiter.degraded_since is not None
        slowest = 0.0
        decisions = []
        for _ in range(300):
            before = time.perf_counter()
            decisions.append(await limiter.hit("b", 3, 60))
            slowest = max(slowest, time.perf_counter() - before)
        assert slowest < 0.5
        assert [d.remaining for d in decisions[:3]] == [1, 0, 0]
        assert sum(d.allowed for d in decisions) == 2  # same semantics, counted here
        assert not await limiter.ping()
        await limiter.aclose()

    asyncio.run(scenario())


@pytest.mark.redis
def test_limits_return_to_redis_after_the_retry_time(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        proxy = RedisProxy(redis_url)
        await proxy.start()
        clock = FakeClock()
        limiter = RateLimiter(proxy.url, prefix=prefix, clock=clock)
        other_replica = RateLimiter(redis_url, prefix=prefix)
        assert (await limiter.hit("b", 5, 60)).remaining == 4

        await proxy.stop()
        assert (await limiter.hit("b", 5, 60)).remaining == 4  # a fresh in-process count
        assert not healthy(limiter)
        await proxy.start()
        clock.advance(5)
        assert (await limiter.hit("b", 5, 60)).remaining == 3  # Redis's count again
        assert healthy(limiter)
        assert (await other_replica.hit("b", 5, 60)).remaining == 2
        await limiter.aclose()
        await other_replica.aclose()
        await proxy.stop()

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_hit_reads_a_key_in_the_same_round_trip(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        limiter = RateLimiter(redis_url, prefix=prefix)
        absent = await limiter.hit("b", 5, 60, read=f"{prefix}generation")
        assert (absent.read_ok, absent.read, absent.remaining) == (True, None, 4)
        raw = raw_redis(redis_url)
        raw.set(f"{prefix}generation", b"7")
        raw.close()
        present = await limiter.hit("b", 5, 60, read=f"{prefix}generation")
        assert (present.read_ok, present.read, present.remaining) == (True, b"7", 3)
        plain = await limiter.hit("b", 5, 60)
        assert (plain.read_ok, plain.read, plain.remaining) == (False, None, 2)
        await limiter.aclose()

    asyncio.run(scenario())


def test_a_hit_counted_in_process_reads_nothing() -> None:
    """Without Redis (or while it is down) the caller must not take the read as an answer."""

    async def scenario() -> None:
        for url in (None, CLOSED_PORT_URL):
            limiter = RateLimiter(url)
            decision = await limiter.hit("b", 5, 60, read="finmatch:generation")
            assert decision.allowed
            assert (decision.read_ok, decision.read) == (False, None)
            await limiter.aclose()

    asyncio.run(scenario())


def test_peek_says_what_a_hit_would_decide_without_counting(
    limiter_url: tuple[str | None, str],
) -> None:
    async def scenario() -> None:
        url, prefix = limiter_url
        limiter = RateLimiter(url, prefix=prefix)
        [fresh, other] = await limiter.peek([("fails:a", 2, 60), ("fails:b", 1, 30)])
        assert (fresh.allowed, fresh.remaining, fresh.reset_seconds) == (True, 1, 60)
        assert (other.allowed, other.remaining, other.reset_seconds) == (True, 0, 30)
        for _ in range(2):
            await limiter.peek([("fails:a", 2, 60)])  # peeks count nothing
        assert (await limiter.hit("fails:a", 2, 60)).remaining == 1
        [one_left] = await limiter.peek([("fails:a", 2, 60)])
        assert (one_left.allowed, one_left.remaining) == (True, 0)
        await limiter.hit("fails:a", 2, 60)
        [spent, untouched] = await limiter.peek([("fails:a", 2, 60), ("fails:b", 1, 30)])
        assert not spent.allowed
        assert 1 <= spent.reset_seconds <= 60
        assert untouched.allowed
        assert spent.headers()["Retry-After"] == str(spent.reset_seconds)
        assert await limiter.peek([]) == []
        await limiter.aclose()

    asyncio.run(scenario())


def test_peek_sees_the_window_end_in_process() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        limiter = RateLimiter(None, clock=clock)
        await limiter.hit("b", 1, 10)
        clock.advance(9.5)
        [spent] = await limiter.peek([("b", 1, 10)])
        assert (spent.allowed, spent.reset_seconds) == (False, 1)
        clock.advance(0.5)
        [again] = await limiter.peek([("b", 1, 10)])
        assert (again.allowed, again.reset_seconds) == (True, 10)

    asyncio.run(scenario())


def test_peek_falls_back_to_in_process_counts_while_redis_is_down() -> None:
    async def scenario() -> None:
        limiter = RateLimiter(CLOSED_PORT_URL)
        await limiter.hit("b", 1, 60)  # counted in-process
        [spent] = await limiter.peek([("b", 1, 60)])
        assert not spent.allowed
        await limiter.aclose()

    asyncio.run(scenario())


def test_a_fresh_window_resets_in_exactly_its_length() -> None:
    """(t + 60) - t is 60.000000000000114 for t = 1000.9: the header must say 60, not 61."""
    limiter = RateLimiter(None, clock=FakeClock(1000.9))
    decision = asyncio.run(limiter.hit("b", 5, 60))
    assert decision.reset_seconds == 60
