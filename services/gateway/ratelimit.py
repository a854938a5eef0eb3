"""Per-key request limits: a fixed window counted in Redis for all replicas, in-process otherwise.

Why a fixed window: one counter per bucket, one atomic round trip, and the reset time we
advertise in RateLimit-Reset is exact rather than an estimate. Its known weakness, a client
fitting up to twice the limit around a window boundary, is acceptable for limits that guard
against abuse rather than meter a paid quota. The window starts at a bucket's first hit and is
timed by Redis, so replicas with skewed clocks still agree.

While Redis is down each process counts on its own (same semantics, per process), so a client
spread over N replicas may get up to N times the limit until Redis is back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from services.gateway.redis_guard import Clock, RedisBacked, RedisUnavailable

# INCR and the expiry in one script, so no replica can ever leave a counter without an expiry
# (a crash between INCR and EXPIRE would otherwise block the bucket for good). PTTL < 0 also
# repairs a key that somehow lost its expiry. A second key, when given, is read in the same
# round trip (the gateway reads the keys' generation with each hit; see RateLimiter.hit).
_HIT_SCRIPT: Final = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
if KEYS[2] then
  return {count, ttl, redis.call('GET', KEYS[2])}
end
return {count, ttl}
"""

# What a hit on each key would decide, without counting it: each key's count and PTTL (-2 for
# a key that does not exist, i.e. a window not started).
_PEEK_SCRIPT: Final = """
local out = {}
for _, key in ipairs(KEYS) do
  table.insert(out, tonumber(redis.call('GET', key) or '0'))
  table.insert(out, redis.call('PTTL', key))
end
return out
"""

# A bucket to peek at: (bucket, limit, window_seconds), as given to RateLimiter.hit.
Bucket = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # seconds until the window resets, at least 1
    # hit(read=key): whether Redis counted the hit and so answered the read, and its value
    read_ok: bool = False
    read: bytes | None = None

    def headers(self) -> dict[str, str]:
        """RateLimit-* fields (IETF httpapi draft), plus Retry-After on a refusal."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


def _decide(
    count: int, limit: int, reset_seconds: float, *, read_ok: bool = False, read: Any = None
) -> RateDecision:
    return RateDecision(
        allowed=count <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        # Rounded to the microsecond first: (t + 60) - t may be 60.000000000000114, not 61 s.
        reset_seconds=max(1, math.ceil(round(reset_seconds, 6))),
        read_ok=read_ok,
        read=read if isinstance(read, bytes) else None,  # Lua turns a missing key into false
    )


def _check(limit: int, window_seconds: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")
    if window_seconds < 1:
        raise ValueError(f"window_seconds must be at least 1, got {window_seconds}")


class LocalRateLimiter:
    """The same fixed windows in this process's memory; expired windows are swept once a minute.

    ``hit`` never awaits, so concurrent coroutines cannot interleave inside it.
    """

    SWEEP_INTERVAL_SECONDS: Final = 60.0

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (count, ends at)
        self._next_sweep = clock() + self.SWEEP_INTERVAL_SECONDS

    def __len__(self) -> int:
        return len(self._windows)

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        count, ends_at = self._windows.get(key, (0, now))
        if now >= ends_at:
            count, ends_at = 0, now + window_seconds
        count += 1
        self._windows[key] = (count, ends_at)
        return _decide(count, limit, ends_at - now)

    async def peek(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        now = self._clock()
        count, ends_at = self._windows.get(key, (0, now))
        if now >= ends_at:
            count, ends_at = 0, now + window_seconds
        return _decide(count + 1, limit, ends_at - now)

    def _sweep(self, now: float) -> None:
        self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
        self._next_sweep = now + self.SWEEP_INTERVAL_SECONDS


class RateLimiter(RedisBacked):
    """Counts hits per bucket in Redis (every replica shares the count), in-process without it.

    With Redis configured but failing, ``hit`` answers from the in-process limiter and leaves
    Redis alone until the guard's retry time (see redis_guard.RedisGuard): it never raises
    because of Redis and never waits longer than the client timeouts.
    """

    def __init__(
        self,
        redis_url: str | None,
        *,
        prefix: str = "finmatch:rl:",
        connect_timeout: float = 0.5,
        op_timeout: float = 0.5,
        retry_after_seconds: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(
            "rate limiter",
            redis_url,
            connect_timeout=connect_timeout,
            op_timeout=op_timeout,
            retry_after_seconds=retry_after_seconds,
            clock=clock,
        )
        self.prefix = prefix
        self._local = LocalRateLimiter(clock=clock)
        if self._redis is not None:
            self._script = self._redis.register_script(_HIT_SCRIPT)
            self._peek_script = self._redis.register_script(_PEEK_SCRIPT)

    async def hit(
        self, bucket: str, limit: int, window_seconds: int, *, read: str | None = None
    ) -> RateDecision:
        """Count one request against ``bucket`` and say whether it is within ``limit``.

        ``read`` names a Redis key (whole, with its prefix) to GET in the same round trip; the
        decision carries its value with ``read_ok`` True when Redis counted the hit, and
        ``read_ok`` False when the hit was counted in-process (no Redis, or Redis is down).
        """
        _check(limit, window_seconds)
        key = f"{self.prefix}{bucket}:{window_seconds}"
        if self._guard is not None:
            script = self._script
            keys = [key] if read is None else [key, read]
            try:
                answer = await self._guard.run(
                    lambda: script(keys=keys, args=[window_seconds * 1000])
                )
            except RedisUnavailable:
                pass
            else:
                value = answer[2] if read is not None and len(answer) > 2 else None
                return _decide(
                    int(answer[0]),
                    limit,
                    int(answer[1]) / 1000,
                    read_ok=read is not None,
                    read=value,
                )
        return await self._local.hit(key, limit, window_seconds)

    async def peek(self, buckets: Sequence[Bucket]) -> list[RateDecision]:
        """What a hit on each bucket would decide now, without counting it (one round trip).

        For limits on something other than requests, e.g. failures counted with ``hit`` only
        when they happen, while every attempt is checked first.
        """
        for _bucket, limit, window_seconds in buckets:
            _check(limit, window_seconds)
        keys = [f"{self.prefix}{bucket}:{window}" for bucket, _limit, window in buckets]
        if self._guard is not None and keys:
            script = self._peek_script
            try:
                answer = await self._guard.run(lambda: script(keys=keys, args=[]))
            except RedisUnavailable:
                pass
            else:
                decisions = []
                for index, (_bucket, limit, window_seconds) in enumerate(buckets):
                    count, ttl = int(answer[2 * index]), int(answer[2 * index + 1])
                    reset = ttl / 1000 if ttl >= 0 else window_seconds
                    decisions.append(_decide(count + 1, limit, reset))
                return decisions
        return [
            await self._local.peek(key, limit, window_seconds)
            for key, (_bucket, limit, window_seconds) in zip(keys, buckets, strict=True)
        ]
