"""What every cache backend offers, and the one rule on TTLs they all enforce."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, *keys: str) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    async def delete(self, *keys: str) -> None: ...

    async def incr(self, key: str) -> int: ...

    def redis_key(self, key: str) -> str | None: ...

    async def run_script(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any: ...

    async def aclose(self) -> None: ...


def ttl_ms(ttl_seconds: float) -> int:
    if not (ttl_seconds > 0 and math.isfinite(ttl_seconds)):
        raise ValueError(f"ttl_seconds must be a positive number, got {ttl_seconds!r}")
    return max(1, math.ceil(ttl_seconds * 1000))
