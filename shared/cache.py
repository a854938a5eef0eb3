"""Key-value cache: Redis when configured, an in-process LRU otherwise and while Redis is down.

This module also holds what every Redis-backed helper in ``shared`` has in common (the rate
limiter and the idempotency store use them too): ``redis_client`` builds a client with short
timeouts and no client-side retries, and ``RedisGuard`` keeps callers off a Redis that just
failed, so a dead Redis costs one failed call per ``retry_after_seconds``, not one per request.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, MutableSet
from typing import Any, Final, Protocol, TypeVar, cast

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError, ReadOnlyError, ResponseError
from redis.maint_notifications import MaintNotificationsConfig

log = logging.getLogger("finmatch.cache")

_LOOKUP_LABELS: Final = ["namespace", "backend"]
CACHE_HITS: Final = Counter(
    "finmatch_cache_hits_total",
    "Cache lookups that found a value, by key namespace (the key's first segment: key, match, "
    "stats, ...) and backend (redis; local: in-process, also while Redis is down). Hit ratio: "
    "sum(rate(finmatch_cache_hits_total[5m])) / (sum(rate(finmatch_cache_hits_total[5m])) "
    "+ sum(rate(finmatch_cache_misses_total[5m]))).",
    _LOOKUP_LABELS,
)
CACHE_MISSES: Final = Counter(
    "finmatch_cache_misses_total",
    "Cache lookups that found nothing (absent or expired), by key namespace and backend.",
    _LOOKUP_LABELS,
)
_NAMESPACE = re.compile(r"[a-z][a-z_]{0,31}")
_lookup_counters: dict[tuple[str, str, bool], Any] = {}


def _count_lookup(key: str, backend: str, hit: bool) -> None:
    """One lookup in the hit or miss counter; Counter.labels() is too slow to call each time."""
    namespace = key.partition(":")[0]
    counter = _lookup_counters.get((namespace, backend, hit))
    if counter is None:
        # Keys are built by our code from a literal first segment; anything else is one label.
        label = namespace if _NAMESPACE.fullmatch(namespace) else "other"
        counter = (CACHE_HITS if hit else CACHE_MISSES).labels(label, backend)
        if label == namespace:
            _lookup_counters[(namespace, backend, hit)] = counter
    counter.inc()


T = TypeVar("T")
Clock = Callable[[], float]

# What "Redis is unreachable or unwell" looks like: redis-py errors (connection refused,
# timeouts, LOADING, OOM, READONLY after a failover) and raw socket errors. The builtin
# TimeoutError that asyncio raises is an OSError. See _is_outage for the exceptions.
REDIS_DOWN: Final = (aioredis.RedisError, OSError)
# Error replies that describe the server's state rather than the command.
_OUTAGE_REPLIES: Final = ("OOM", "MASTERDOWN", "MISCONF", "NOREPLICAS", "BUSY", "TRYAGAIN")


def _is_outage(exc: BaseException) -> bool:
    """False for errors a healthy Redis gives a wrong command (WRONGTYPE, not an integer, a bad
    argument): those are bugs to raise, not reasons to leave Redis."""
    if isinstance(exc, DataError):
        return False
    if isinstance(exc, ResponseError) and not isinstance(exc, ReadOnlyError):
        return str(exc).startswith(_OUTAGE_REPLIES)
    return True


def redis_client(
    url: str, *, connect_timeout: float = 0.5, op_timeout: float = 0.5
) -> aioredis.Redis:
    """A client that fails fast: short socket timeouts and no retries of its own.

    Retries are off explicitly because, depending on how it is built, a redis-py 6+ client
    retries a failed command up to 10 times with exponential backoff: seconds of waiting per
    call on a dead Redis, and a SET NX or INCR whose reply was lost would run twice. Callers
    here fall back to in-process state instead.

    Maintenance notifications (a Redis Enterprise/Cloud feature) are off because while they are
    on ("auto" by default in redis-py 8) the pool skips its check for pooled connections the
    server has closed, so after a Redis restart each of them would fail one command.
    """
    return aioredis.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=op_timeout,
        retry=Retry(NoBackoff(), 0),
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )


class RedisUnavailable(Exception):
    """Redis was skipped (recently failed) or has just failed; answer from the fallback."""


class RedisGuard:
    """Remembers that Redis failed and keeps callers off it until the retry time.

    Healthy: ``run`` calls Redis; a REDIS_DOWN error marks the guard degraded and surfaces as
    RedisUnavailable. Degraded: ``run`` raises RedisUnavailable at once, without touching a
    socket, until ``retry_after_seconds`` have passed; then one caller probes Redis while
    concurrent callers keep using their fallback. Only a successful probe ends the outage, and
    ``on_recovery`` runs before anyone else uses Redis (the cache replays missed invalidations).
    """

    def __init__(
        self,
        name: str,
        client: aioredis.Redis,
        *,
        on_recovery: Callable[[], Awaitable[None]] | None = None,
        retry_after_seconds: float = 5.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self.retry_after_seconds = retry_after_seconds
        self._client = client
        self._on_recovery = on_recovery
        self._clock = clock
        self._retry_at: float | None = None  # None while Redis is believed healthy
        self._probing = False
        self.degraded_since: float | None = None  # wall-clock time, for /readyz and logs

    @property
    def redis_ok(self) -> bool:
        return self._retry_at is None

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        retry_at = self._retry_at
        if retry_at is not None and (self._clock() < retry_at or not await self.check()):
            raise RedisUnavailable(self.name)
        try:
            return await call()
        except REDIS_DOWN as exc:
            if not _is_outage(exc):
                raise
            self._mark_down(exc)
            raise RedisUnavailable(self.name) from exc

    async def check(self) -> bool:
        """Ask Redis now, ignoring the retry timer (readiness checks use this)."""
        if self._probing:  # another probe is out; do not pile on
            return self.redis_ok
        self._probing = True
        try:
            if self.redis_ok:
                await self._client.ping()
                return True
            # Idle pooled connections may lead to the dead server: start afresh.
            await self._client.connection_pool.disconnect(inuse_connections=False)
            await self._client.ping()
            if self._on_recovery is not None:
                await self._on_recovery()
        except REDIS_DOWN as exc:
            if not _is_outage(exc):
                raise
            self._mark_down(exc)
            return False
        finally:
            self._probing = False
        log.info("%s: redis is back after %.1f s", self.name, self._outage_seconds())
        self._retry_at = None
        self.degraded_since = None
        return True

    def _mark_down(self, exc: BaseException) -> None:
        if self._retry_at is None:
            self.degraded_since = time.time()
            log.warning(
                "%s: redis failed (%s: %s); using the in-process fallback, retrying in %.0f s",
                self.name,
                type(exc).__name__,
                exc,
                self.retry_after_seconds,
            )
        self._retry_at = self._clock() + self.retry_after_seconds

    def _outage_seconds(self) -> float:
        return time.time() - self.degraded_since if self.degraded_since is not None else 0.0


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, *keys: str) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    async def delete(self, *keys: str) -> None: ...

    async def incr(self, key: str) -> int: ...

    def redis_key(self, key: str) -> str | None: ...

    async def aclose(self) -> None: ...


def stamped(payload: bytes, *stamps: str) -> bytes:
    """``payload`` with the versions it was computed from (generations, a model version), so
    that one MGET can fetch it with the current versions and ``unstamped`` can check them."""
    return "|".join(stamps).encode() + b"\n" + payload


def unstamped(value: bytes | None, *stamps: str) -> bytes | None:
    """The payload of a ``stamped`` value if it carries exactly these stamps, else None."""
    if value is None:
        return None
    head, sep, payload = value.partition(b"\n")
    return payload if sep and head == "|".join(stamps).encode() else None


def _ttl_ms(ttl_seconds: float) -> int:
    if not (ttl_seconds > 0 and math.isfinite(ttl_seconds)):
        raise ValueError(f"ttl_seconds must be a positive number, got {ttl_seconds!r}")
    return max(1, math.ceil(ttl_seconds * 1000))


class LocalCache:
    """In-process LRU with a TTL per entry, bounded to ``max_entries``.

    No method awaits, so each one runs to completion within the event loop: safe for any number
    of coroutines, not for threads. Counters (``incr``) are kept apart from the LRU and never
    expire, as in Redis: evicting a generation counter would let it count up to an old value
    again and revive entries stored under that generation.
    """

    def __init__(self, max_entries: int = 10_000, *, clock: Clock = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # value, expires at
        self._counters: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries) + len(self._counters)

    # The same health surface as FallbackCache, so callers need not tell the two apart:
    # an in-process cache uses no Redis.
    redis_ok: Final = False
    degraded_since: Final = None

    async def ping(self) -> bool:
        return False

    async def get(self, key: str) -> bytes | None:
        value = self._lookup(key)
        _count_lookup(key, "local", value is not None)
        return value

    async def get_many(self, *keys: str) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    def _lookup(self, key: str) -> bytes | None:
        counter = self._counters.get(key)
        if counter is not None:
            return str(counter).encode()
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        expires_at = self._clock() + _ttl_ms(ttl_seconds) / 1000
        self._counters.pop(key, None)
        self._entries[key] = (value, expires_at)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._entries.pop(key, None)
            self._counters.pop(key, None)

    async def incr(self, key: str) -> int:
        current = self._counters.get(key)
        if current is None:
            stored = self._lookup(key)  # like Redis, a stored integer can be incremented
            current = int(stored) if stored is not None else 0
            self._entries.pop(key, None)
        self._counters[key] = current + 1
        return current + 1

    def redis_key(self, key: str) -> str | None:
        """No Redis behind this cache."""
        return None

    def clear(self) -> None:
        self._entries.clear()
        self._counters.clear()

    async def aclose(self) -> None:
        self.clear()


class RedisCache:
    """The cache in Redis, every key under ``prefix``; raises redis-py errors as they come."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "finmatch:",
        connect_timeout: float = 0.5,
        op_timeout: float = 0.5,
    ) -> None:
        self.prefix = prefix
        self.client = redis_client(url, connect_timeout=connect_timeout, op_timeout=op_timeout)

    async def get(self, key: str) -> bytes | None:
        value = cast(bytes | None, await self.client.get(self.prefix + key))
        _count_lookup(key, "redis", value is not None)
        return value

    async def get_many(self, *keys: str) -> list[bytes | None]:
        """Several keys in one round trip (MGET)."""
        values = cast(list[bytes | None], await self.client.mget([self.prefix + k for k in keys]))
        for key, value in zip(keys, values, strict=True):
            _count_lookup(key, "redis", value is not None)
        return values

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self.client.set(self.prefix + key, value, px=_ttl_ms(ttl_seconds))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self.client.delete(*(self.prefix + key for key in keys))

    async def incr(self, key: str) -> int:
        return int(await self.client.incr(self.prefix + key))

    def redis_key(self, key: str) -> str:
        """The key's whole name in Redis, for a script run on another client (the limiter)."""
        return self.prefix + key

    async def replay_invalidations(self, deleted: Collection[str], bumped: Collection[str]) -> None:
        """Apply, in one round trip, the deletes and increments made while Redis was away."""
        if not deleted and not bumped:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            if deleted:
                pipe.delete(*(self.prefix + key for key in deleted))
            for key in bumped:
                pipe.incr(self.prefix + key)
            await pipe.execute()

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def aclose(self) -> None:
        await self.client.aclose()


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
        retry_after_seconds: float = 5.0,
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
        _ttl_ms(ttl_seconds)  # a bad TTL is the caller's bug: raise it even during an outage
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
    retry_after_seconds: float = 5.0,
) -> FallbackCache | LocalCache:
    """The cache for a service: Redis (with fallback) when a URL is configured, else in-process.

    ``prefix`` namespaces every Redis key; the in-process cache belongs to one process and needs
    none.
    """
    if not redis_url:
        return LocalCache()
    redis = RedisCache(
        redis_url, prefix=prefix, connect_timeout=connect_timeout, op_timeout=op_timeout
    )
    return FallbackCache(redis, retry_after_seconds=retry_after_seconds)
