"""The in-process cache: an LRU with a TTL per entry, also the fallback while Redis is down."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

from services.gateway.cache._metrics import count_lookup
from services.gateway.cache._protocol import ttl_ms
from services.gateway.redis_guard import Clock


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
        count_lookup(key, "local", value is not None)
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
        expires_at = self._clock() + ttl_ms(ttl_seconds) / 1000
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

    async def run_script(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """No Redis behind this cache: nothing runs (a script's keys only Redis may hold)."""
        return None

    def clear(self) -> None:
        self._entries.clear()
        self._counters.clear()

    async def aclose(self) -> None:
        self.clear()
