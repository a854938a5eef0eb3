"""Idempotency-Key store: the first request with a key runs, retries get its stored response.

Semantics follow Stripe and the IETF Idempotency-Key draft. Keys are per ``scope`` (the
principal). ``begin`` claims a key atomically, or reports what holds it:

- NEW: the caller owns the key and must later ``complete`` (store the response) or
  ``abandon`` (nothing was done; free the key so a retry can run).
- IN_FLIGHT: another request with this key is running (the gateway answers 409).
- REPLAY: the key was completed; answer with the stored response (success or error alike).
- MISMATCH: the key was used for a different request fingerprint (422), in flight or not.

Expiry, as the draft requires us to document: a completed response is kept ``ttl_seconds``
(24 h by default) after completion, after which the key counts as new. A claim expires after
``in_flight_seconds`` so a crashed request cannot block its key; keep that above the longest
request the gateway allows, or a slow request and its retry may both run.

With Redis, one key holds the state for all replicas. Without Redis, or while it is down, an
in-process store gives the same answers within one process only. Keys claimed in-process
during an outage stay in-process until they expire, so the request that claimed one is
completed, and its retries answered, in the same place. A key claimed in Redis whose
completion (or release) could not reach Redis is kept here and written to Redis as soon as
Redis answers again, so other replicas do not see a claim nobody holds ("in flight", 409)
for ``in_flight_seconds``. Across replicas (and across a Redis that lost its keys) the
registry's own check keeps a keyed write to one: see services/registry/idempotency.py.
"""

from __future__ import annotations

import base64
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, cast

import orjson

from services.gateway.redis_guard import Clock, RedisBacked, RedisUnavailable

MAX_KEY_LENGTH: Final = 255  # as Stripe; the route answers 422 before the store sees a longer one

# Values in Redis: b"P" + fingerprint while in flight, b"D" + JSON once done. The one-byte tag
# lets the scripts below tell the states apart without decoding JSON.
_IN_FLIGHT_TAG: Final = b"P"
_DONE_TAG: Final = b"D"

# Store the response unless the key is already completed (the first answer stands) or is held
# by a claim with another fingerprint (ours expired and another request took the key).
_COMPLETE_SCRIPT: Final = """
local current = redis.call('GET', KEYS[1])
if current and (string.sub(current, 1, 1) == 'D' or current ~= ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
# Free a claim; never a completed response.
_ABANDON_SCRIPT: Final = """
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, 1) == 'P' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    media_type: str | None


class BeginState(StrEnum):
    NEW = "new"
    IN_FLIGHT = "in_flight"
    REPLAY = "replay"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class Begin:
    state: BeginState
    stored: StoredResponse | None = None


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"an idempotency key has 1 to {MAX_KEY_LENGTH} characters")


def _encode_done(fingerprint: str, response: StoredResponse) -> bytes:
    return _DONE_TAG + orjson.dumps(
        {
            "f": fingerprint,
            "s": response.status,
            "h": response.headers,
            "b": base64.b64encode(response.body).decode("ascii"),
            "m": response.media_type,
        }
    )


def _decode(value: bytes, fingerprint: str) -> Begin:
    """What a stored value means for a request with ``fingerprint``."""
    if value[:1] == _IN_FLIGHT_TAG:
        same = value[1:] == fingerprint.encode()
        return Begin(BeginState.IN_FLIGHT if same else BeginState.MISMATCH)
    try:
        data: dict[str, Any] = orjson.loads(value[1:]) if value[:1] == _DONE_TAG else {}
        stored = StoredResponse(
            status=int(data["s"]),
            headers={str(k): str(v) for k, v in data["h"].items()},
            body=base64.b64decode(data["b"]),
            media_type=cast(str | None, data["m"]),
        )
        stored_fingerprint = str(data["f"])
    except (ValueError, KeyError, TypeError, AttributeError):
        # Not ours or damaged: refuse the key rather than run the request twice or replay junk.
        return Begin(BeginState.MISMATCH)
    if stored_fingerprint != fingerprint:
        return Begin(BeginState.MISMATCH)
    return Begin(BeginState.REPLAY, stored)


@dataclass(frozen=True, slots=True)
class _Unsynced:
    """A Redis claim's outcome that Redis has not heard yet: a response, or None (released)."""

    fingerprint: str
    response: StoredResponse | None
    claim_expires_at: float  # past this the claim is gone from Redis anyway


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    stored: StoredResponse | None  # None while in flight
    expires_at: float


class LocalIdempotencyStore:
    """The same states in this process's memory, bounded to ``max_entries``.

    No method awaits, so a claim is atomic among coroutines. Expired entries are swept once a
    minute; past ``max_entries`` the oldest entries go first (their keys then count as new).
    """

    SWEEP_INTERVAL_SECONDS: Final = 60.0

    def __init__(
        self,
        *,
        ttl_seconds: float = 86_400,
        in_flight_seconds: float = 120,
        max_entries: int = 10_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.in_flight_seconds = in_flight_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._next_sweep = clock() + self.SWEEP_INTERVAL_SECONDS

    def __len__(self) -> int:
        return len(self._entries)

    def holds(self, scope: str, key: str) -> bool:
        return self._live(scope, key) is not None

    def begin(self, scope: str, key: str, fingerprint: str) -> Begin:
        entry = self._live(scope, key)
        if entry is None:
            self._put((scope, key), _Entry(fingerprint, None, self._expiry(self.in_flight_seconds)))
            return Begin(BeginState.NEW)
        if entry.fingerprint != fingerprint:
            return Begin(BeginState.MISMATCH)
        if entry.stored is None:
            return Begin(BeginState.IN_FLIGHT)
        return Begin(BeginState.REPLAY, entry.stored)

    def complete(self, scope: str, key: str, fingerprint: str, response: StoredResponse) -> None:
        entry = self._live(scope, key)
        if entry is not None and (entry.stored is not None or entry.fingerprint != fingerprint):
            return  # same rule as _COMPLETE_SCRIPT
        self._put((scope, key), _Entry(fingerprint, response, self._expiry(self.ttl_seconds)))

    def abandon(self, scope: str, key: str) -> None:
        entry = self._live(scope, key)
        if entry is not None and entry.stored is None:
            del self._entries[(scope, key)]

    def _expiry(self, seconds: float) -> float:
        return self._clock() + seconds

    def _live(self, scope: str, key: str) -> _Entry | None:
        now = self._clock()
        if now >= self._next_sweep:
            self._entries = OrderedDict(
                (k, e) for k, e in self._entries.items() if e.expires_at > now
            )
            self._next_sweep = now + self.SWEEP_INTERVAL_SECONDS
        entry = self._entries.get((scope, key))
        if entry is not None and now >= entry.expires_at:
            del self._entries[(scope, key)]
            return None
        return entry

    def _put(self, slot: tuple[str, str], entry: _Entry) -> None:
        self._entries[slot] = entry
        self._entries.move_to_end(slot)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class IdempotencyStore(RedisBacked):
    """Idempotency keys in Redis for every replica, in-process without it (see the module doc).

    Never raises because Redis is down: it answers from the in-process store and leaves Redis
    alone until the guard's retry time (see redis_guard.RedisGuard).
    """

    def __init__(
        self,
        redis_url: str | None,
        *,
        prefix: str = "finmatch:idem:",
        ttl_seconds: int = 86_400,
        in_flight_seconds: int = 120,
        connect_timeout: float = 0.5,
        op_timeout: float = 0.5,
        retry_after_seconds: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if ttl_seconds < 1 or in_flight_seconds < 1:
            raise ValueError("ttl_seconds and in_flight_seconds must be at least 1")
        super().__init__(
            "idempotency store",
            redis_url,
            connect_timeout=connect_timeout,
            op_timeout=op_timeout,
            retry_after_seconds=retry_after_seconds,
            clock=clock,
        )
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.in_flight_seconds = in_flight_seconds
        self.local = LocalIdempotencyStore(
            ttl_seconds=ttl_seconds, in_flight_seconds=in_flight_seconds, clock=clock
        )
        self._clock = clock
        # Outcomes of Redis claims that Redis missed, oldest first (see the module doc).
        self._unsynced: OrderedDict[tuple[str, str], _Unsynced] = OrderedDict()
        self._syncing = False
        if self._redis is not None:
            self._complete_script = self._redis.register_script(_COMPLETE_SCRIPT)
            self._abandon_script = self._redis.register_script(_ABANDON_SCRIPT)

    MAX_UNSYNCED: Final = 10_000
    SYNC_BATCH: Final = 100

    @property
    def unsynced(self) -> int:
        """Outcomes of Redis claims still to be written to Redis."""
        return len(self._unsynced)

    def _remember(self, scope: str, key: str, outcome: _Unsynced) -> None:
        self._unsynced[(scope, key)] = outcome
        self._unsynced.move_to_end((scope, key))
        while len(self._unsynced) > self.MAX_UNSYNCED:
            self._unsynced.popitem(last=False)  # its claim expires in Redis by itself

    async def _sync(self) -> None:
        """Write missed outcomes to a Redis that answers again, a batch per call."""
        guard = self._guard
        # Not only when the guard last saw Redis answer: its run() probes Redis once the retry
        # time has passed (and fails at once before), so a replica answering from memory syncs.
        if not self._unsynced or self._syncing or guard is None:
            return
        self._syncing = True
        try:
            now = self._clock()
            for _ in range(min(self.SYNC_BATCH, len(self._unsynced))):
                (scope, key), outcome = next(iter(self._unsynced.items()))
                if outcome.claim_expires_at > now:
                    await guard.run(self._sync_call(scope, key, outcome))
                self._unsynced.pop((scope, key), None)
        except RedisUnavailable:
            pass  # still down: try again on a later call
        finally:
            self._syncing = False

    def _sync_call(
        self, scope: str, key: str, outcome: _Unsynced
    ) -> Callable[[], Awaitable[object]]:
        redis_key = self._redis_key(scope, key)
        if outcome.response is None:
            abandon = self._abandon_script
            return lambda: abandon(keys=[redis_key])
        complete = self._complete_script
        args: list[bytes | int] = [
            _IN_FLIGHT_TAG + outcome.fingerprint.encode(),
            _encode_done(outcome.fingerprint, outcome.response),
            self.ttl_seconds * 1000,
        ]
        return lambda: complete(keys=[redis_key], args=args)

    def _redis_key(self, scope: str, key: str) -> str:
        # The scope's length keeps ("a:b", "c") and ("a", "b:c") apart: two principals must
        # never share a key.
        return f"{self.prefix}{len(scope)}:{scope}:{key}"

    async def begin(self, scope: str, key: str, fingerprint: str) -> Begin:
        """Claim ``key`` for this request (NEW) or report who has it (see the module doc)."""
        _check_key(key)
        guard, redis = self._guard, self._redis
        if self._unsynced:
            # Before any answer from memory too: the retry of a key whose outcome Redis missed
            # is answered here from memory, and the other replicas wait on its Redis claim.
            await self._sync()
        if guard is None or redis is None or self.local.holds(scope, key):
            return self.local.begin(scope, key, fingerprint)
        redis_key = self._redis_key(scope, key)
        marker = _IN_FLIGHT_TAG + fingerprint.encode()
        in_flight_ms = self.in_flight_seconds * 1000
        try:
            # SET NX GET (Redis 7.0+): claims the key, or returns what holds it, in one step.
            previous = await guard.run(
                lambda: redis.set(redis_key, marker, nx=True, get=True, px=in_flight_ms)
            )
        except RedisUnavailable:
            return self.local.begin(scope, key, fingerprint)
        await self._sync()  # Redis answers: it may have missed outcomes of earlier claims
        if previous is None:
            return Begin(BeginState.NEW)
        return _decode(cast(bytes, previous), fingerprint)

    async def complete(
        self, scope: str, key: str, fingerprint: str, response: StoredResponse
    ) -> None:
        """Store the response for replays (the first completion of a key stands)."""
        _check_key(key)
        guard = self._guard
        if guard is None or self.local.holds(scope, key):
            self.local.complete(scope, key, fingerprint, response)
            return
        script, redis_key = self._complete_script, self._redis_key(scope, key)
        args: list[bytes | int] = [
            _IN_FLIGHT_TAG + fingerprint.encode(),
            _encode_done(fingerprint, response),
            self.ttl_seconds * 1000,
        ]
        try:
            await guard.run(lambda: script(keys=[redis_key], args=args))
        except RedisUnavailable:
            # Keep the answer here so retries reaching this process replay it, and write it to
            # Redis once Redis answers again (its claim would otherwise block other replicas).
            self.local.complete(scope, key, fingerprint, response)
            self._remember(scope, key, _Unsynced(fingerprint, response, self._claim_expiry()))

    async def abandon(self, scope: str, key: str) -> None:
        """Free a claim whose request produced no response, so that a retry can run."""
        _check_key(key)
        guard = self._guard
        if guard is None or self.local.holds(scope, key):
            self.local.abandon(scope, key)
            return
        script, redis_key = self._abandon_script, self._redis_key(scope, key)
        try:
            await guard.run(lambda: script(keys=[redis_key]))
        except RedisUnavailable:  # release it once Redis answers again
            self._remember(scope, key, _Unsynced("", None, self._claim_expiry()))

    def _claim_expiry(self) -> float:
        # An upper bound: the claim was made at most this long ago.
        return self._clock() + self.in_flight_seconds
