"""Helpers for the tests of the gateway's Redis-backed state (cache, rate limits, idempotency):
a fake clock, a TCP proxy in front of the real Redis that a test can cut or hang, key prefixes.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol
from urllib.parse import urlsplit

import redis

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"  # nothing listens there: connection refused


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RedisProxy:
    """A TCP hop in front of the real Redis. ``stop`` closes the port and every open connection
    (a crashed Redis); with ``hang`` set, new connections are accepted and never answered, and
    after ``freeze``, the connections open at that moment stop answering (a stuck Redis, or a
    host that vanished without closing them)."""

    def __init__(self, target_url: str) -> None:
        target = urlsplit(target_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 6379)
        self._db = target.path.lstrip("/") or "0"
        self.port = 0
        self.hang = False
        self._frozen: set[asyncio.StreamReader] = set()
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._clients: set[asyncio.StreamReader] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self._db}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, *, reset: bool = False) -> None:
        """Close the port and every connection: with FIN, as the kernel does for a process that
        died, or with ``reset``, RST, as a host that lost the connections' state answers."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            if reset:
                writer.transport.abort()
            else:
                writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        own = [writer]
        self._writers.add(writer)
        self._clients.add(reader)
        try:
            if self.hang:
                await reader.read()  # swallow the commands, answer nothing
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
            own.append(upstream_writer)
            self._writers.add(upstream_writer)
            await asyncio.gather(
                self._pipe(reader, upstream_writer, reader),
                self._pipe(upstream_reader, writer, reader),
            )
        except OSError:
            pass
        finally:
            for each in own:
                each.close()
                self._writers.discard(each)
            self._tasks.discard(task)
            self._clients.discard(reader)

    def freeze(self) -> None:
        self._frozen.update(self._clients)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: asyncio.StreamReader,
    ) -> None:
        while data := await reader.read(65_536):
            if client not in self._frozen:
                writer.write(data)
                await writer.drain()
        writer.close()


class _Degradable(Protocol):
    @property
    def redis_ok(self) -> bool: ...


def healthy(component: _Degradable) -> bool:
    """``component.redis_ok``, read through a call so that mypy does not narrow it for good."""
    return component.redis_ok


def unique_prefix() -> str:
    return f"finmatch-test:{uuid.uuid4().hex[:12]}:"


def raw_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def delete_keys(redis_url: str, prefix: str) -> None:
    """Delete this test's keys only (never FLUSHDB: the server is shared); best effort."""
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=2)
        with client:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
    except (redis.RedisError, OSError):
        pass  # a Redis that is gone (a test stopped it) has nothing left to clean
