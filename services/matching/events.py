"""Publish/subscribe between replicas: Redis when configured, in-process otherwise.

The in-process bus only reaches subscribers in the same process; callers that need every
replica to hear a message (model promotion) also poll, so a missing Redis delays, never loses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Protocol

import redis.asyncio as aioredis

log = logging.getLogger("finmatch.events")


class EventBus(Protocol):
    async def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


class LocalEventBus:
    def __init__(self) -> None:
        self._queues: dict[str, list[asyncio.Queue[str]]] = defaultdict(list)

    async def publish(self, channel: str, message: str) -> None:
        for queue in list(self._queues[channel]):
            queue.put_nowait(message)

    async def subscribe(self, channel: str) -> AsyncIterator[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._queues[channel].append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues[channel].remove(queue)

    async def aclose(self) -> None:
        self._queues.clear()


class RedisEventBus:
    """Redis pub/sub; a lost connection is retried by the subscriber loop, not raised."""

    def __init__(self, url: str) -> None:
        self._redis = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=5)

    async def publish(self, channel: str, message: str) -> None:
        try:
            await self._redis.publish(channel, message)
        except (aioredis.RedisError, OSError) as exc:
            log.warning(
                "event not published on %s (redis: %s); pollers will catch up", channel, exc
            )

    async def subscribe(self, channel: str) -> AsyncIterator[str]:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is not None:
                        data = message["data"]
                        yield data.decode() if isinstance(data, bytes) else str(data)
            except (aioredis.RedisError, OSError) as exc:
                log.warning("redis subscription to %s lost (%s); retrying", channel, exc)
                await asyncio.sleep(2.0)
            finally:
                with contextlib.suppress(aioredis.RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        await self._redis.aclose()


def event_bus(redis_url: str | None) -> EventBus:
    return RedisEventBus(redis_url) if redis_url else LocalEventBus()
