"""Redis first, the in-process cache while Redis is down; and the factory a service calls."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, MutableSet, Sequence
from typing import Any, Final

from services.gateway.cache._local import LocalCache
from services.gateway.cache._protocol import ttl_ms
from services.gateway.cache._redis import RedisCache
from services.gateway.redis_guard import Clock, RedisGuard, RedisUnavailable

log = logging.getLogger("finmatch.cache")


class FallbackCache:
    """Redis first; while Redis is down, a per-process LocalCache (see RedisGuard for timing).

    The local cache is only used during an outage, never as a layer in front of Redis, so
    replicas never disagree while Redis is healthy. Deletes and increments made during an
    outage are replayed into Redis before it is used again (otherwise a value invalidated
    during the outage would come back); values set during the outage are dropped.
    """

    MAX_MISSED_INVALIDATIONS: Final = 10_000

    def __init__(
        self,
        redis: RedisCache,
        local: LocalCache | None = None,
        *,
        retry_after_seconds: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.redis = redis
        self.local = local if local is not None else LocalCache(clock=clock)
        self._guard = RedisGuard(
            "cache",
            redis.client,
            on_recovery=self._replay_outage,
            retry_after_seconds=retry_after_seconds,
            clock=clock,
        )
        self._missed_deletes: set[str] = set()
        self._missed_incrs: set[str] = set()
        self._missed_overflow = False

    @property
    def redis_ok(self) -> bool:
        return self._guard.redis_ok

    @property
    def degraded_since(self) -> float | None:
        """Wall-clock time (``time.time()``) of the failure that started the outage."""
        return self._guard.degraded_since

    async def ping(self) -> bool:
        return await self._guard.check()

    async def get(self, key: str) -> bytes | None:
        try:
            return await self._guard.run(lambda: self.redis.get(key))
        except RedisUnavailable:
            return await self.local.get(key)

    async def get_many(self, *keys: str) -> list[bytes | None]:
        try:
            return await self._guard.run(lambda: self.redis.get_many(*keys))
        except RedisUnavailable:
            return await self.local.get_many(*keys)

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        ttl_ms(ttl_seconds)  # a bad TTL is the caller's bug: raise it even during an outage
        try:
            await self._guard.run(lambda: self.redis.set(key, value, ttl_seconds))
        except RedisUnavailable:
            await self.local.set(key, value, ttl_seconds)

    async def delete(self, *keys: str) -> None:
        try:
            await self._guard.run(lambda: self.redis.delete(*keys))
        except RedisUnavailable:
            await self.local.delete(*keys)
            self._remember(self._missed_deletes, keys)

    async def incr(self, key: str) -> int:
        try:
            return await self._guard.run(lambda: self.redis.incr(key))
        except RedisUnavailable:
            self._remember(self._missed_incrs, (key,))
            return await self.local.incr(key)

    async def run_script(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's answer from Redis; None while Redis is down (nothing runs in-process:
        a script's keys are ones that only Redis may hold)."""
        try:
            return await self._guard.run(lambda: self.redis.run_script(script, keys, args))
        except RedisUnavailable:
            return None

    def redis_key(self, key: str) -> str | None:
        """The key's whole name in Redis while Redis is in use (and the invalidations missed
        during an outage have been replayed), else None: read it elsewhere only then."""
        return self.redis.redis_key(key) if self._guard.redis_ok else None

    async def aclose(self) -> None:
        await self.redis.aclose()
        await self.local.aclose()

    def _remember(self, missed: MutableSet[str], keys: Collection[str]) -> None:
        for key in keys:
            if len(self._missed_deletes) + len(self._missed_incrs) >= self.MAX_MISSED_INVALIDATIONS:
                if not self._missed_overflow:
                    log.warning(
                        "cache: too many invalidations in this outage; the rest rely on TTLs"
                    )
                    self._missed_overflow = True
                return
            missed.add(key)

    async def _replay_outage(self) -> None:
        await self.redis.replay_invalidations(self._missed_deletes, self._missed_incrs)
        self._missed_deletes.clear()
        self._missed_incrs.clear()
        self._missed_overflow = False
        self.local.clear()


def make_cache(
    redis_url: str | None,
    *,
    prefix: str = "finmatch:",
    connect_timeout: float = 0.5,
    op_timeout: float = 0.5,
    retry_after_seconds: float = 2.0,
    clock: Clock = time.monotonic,
) -> FallbackCache | LocalCache:
    """The cache for a service: Redis (with fallback) when a URL is configured, else in-process.

    ``prefix`` namespaces every Redis key; the in-process cache belongs to one process and needs
    none. ``clock`` times in-process entries and Redis retries (entries in Redis expire by
    Redis's clock).
    """
    if not redis_url:
        return LocalCache(clock=clock)
    redis = RedisCache(
        redis_url, prefix=prefix, connect_timeout=connect_timeout, op_timeout=op_timeout
    )
    return FallbackCache(redis, retry_after_seconds=retry_after_seconds, clock=clock)
