"""Redis for the gateway's shared state: a client that fails fast, and a guard against outages.

The cache, the rate limiter and the idempotency store all build their client with
``redis_client`` (short timeouts, no client-side retries) and stand behind a ``RedisGuard``,
which keeps callers off a Redis that just failed, so a dead Redis costs one failed call per
retry period, not one per request. The period starts short and doubles up to
``retry_after_seconds`` (2 s by default), so a Redis that comes back is used again within about
that time. ``RedisBacked`` is that pairing for a store that answers in-process without Redis.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError, ReadOnlyError, ResponseError
from redis.maint_notifications import MaintNotificationsConfig

# The name outage warnings have always been logged under; log settings may name it.
log = logging.getLogger("finmatch.cache")

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
    socket, until the retry time; then one caller probes Redis while concurrent callers keep
    using their fallback. Only a successful probe ends the outage, and ``on_recovery`` runs
    before anyone else uses Redis (the cache replays missed invalidations).

    The retry time backs off: ``first_retry_seconds`` after the failure that started the
    outage, doubling with each failed probe up to ``retry_after_seconds``. A short blip costs a
    fraction of a second in-process; a long outage costs one failed call per
    ``retry_after_seconds``, and Redis is used again within that time of its return.
    """

    def __init__(
        self,
        name: str,
        client: aioredis.Redis,
        *,
        on_recovery: Callable[[], Awaitable[None]] | None = None,
        retry_after_seconds: float = 2.0,
        first_retry_seconds: float = 0.25,
        clock: Clock = time.monotonic,
    ) -> None:
        if not 0 < first_retry_seconds <= retry_after_seconds:
            raise ValueError("need 0 < first_retry_seconds <= retry_after_seconds")
        self.name = name
        self.retry_after_seconds = retry_after_seconds
        self.first_retry_seconds = first_retry_seconds
        self._hold_off = first_retry_seconds  # the next failure's wait
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
        self._hold_off = self.first_retry_seconds
        self.degraded_since = None
        return True

    def _mark_down(self, exc: BaseException) -> None:
        if self._retry_at is None:
            self.degraded_since = time.time()
            log.warning(
                "%s: redis failed (%s: %s); using the in-process fallback, retrying within %.1f s",
                self.name,
                type(exc).__name__,
                exc,
                self.retry_after_seconds,
            )
        self._retry_at = self._clock() + self._hold_off
        self._hold_off = min(self._hold_off * 2, self.retry_after_seconds)

    def _outage_seconds(self) -> float:
        return time.time() - self.degraded_since if self.degraded_since is not None else 0.0


class RedisBacked:
    """A store kept in Redis when ``redis_url`` is set, and in-process without it or while Redis
    is down: the client and guard (None without Redis) and the health surface /readyz reads."""

    def __init__(
        self,
        name: str,
        redis_url: str | None,
        *,
        connect_timeout: float,
        op_timeout: float,
        retry_after_seconds: float,
        clock: Clock,
    ) -> None:
        self._redis: aioredis.Redis | None = None
        self._guard: RedisGuard | None = None
        if redis_url:
            self._redis = redis_client(
                redis_url, connect_timeout=connect_timeout, op_timeout=op_timeout
            )
            self._guard = RedisGuard(
                name, self._redis, retry_after_seconds=retry_after_seconds, clock=clock
            )

    @property
    def redis_ok(self) -> bool:
        """True while the configured Redis answers; False without Redis or during an outage."""
        return self._guard is not None and self._guard.redis_ok

    @property
    def degraded_since(self) -> float | None:
        return self._guard.degraded_since if self._guard is not None else None

    async def ping(self) -> bool:
        return self._guard is not None and await self._guard.check()

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
