"""The cache in Redis, shared by every gateway replica."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, cast

from redis.commands.core import AsyncScript

from services.gateway.cache._metrics import count_lookup
from services.gateway.cache._protocol import ttl_ms
from services.gateway.redis_guard import redis_client


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
        self._scripts: dict[str, AsyncScript] = {}

    async def get(self, key: str) -> bytes | None:
        value = cast(bytes | None, await self.client.get(self.prefix + key))
        count_lookup(key, "redis", value is not None)
        return value

    async def get_many(self, *keys: str) -> list[bytes | None]:
        """Several keys in one round trip (MGET)."""
        values = cast(list[bytes | None], await self.client.mget([self.prefix + k for k in keys]))
        for key, value in zip(keys, values, strict=True):
            count_lookup(key, "redis", value is not None)
        return values

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self.client.set(self.prefix + key, value, px=ttl_ms(ttl_seconds))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self.client.delete(*(self.prefix + key for key in keys))

    async def incr(self, key: str) -> int:
        return int(await self.client.incr(self.prefix + key))

    async def run_script(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """A Lua script (EVALSHA, loaded on first use) on these keys, each under the prefix."""
        registered = self._scripts.get(script)
        if registered is None:
            registered = self._scripts[script] = self.client.register_script(script)
        return await registered(keys=[self.prefix + key for key in keys], args=list(args))

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
