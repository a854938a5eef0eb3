"""Helpers for the tests of the gateway's Redis-backed state (cache, rate limits, idempotency):
a fake clock, the TCP proxy in front of the real Redis that a test can cut or hang, key prefixes.
"""

from __future__ import annotations

import uuid
from typing import Protocol
from urllib.parse import urlsplit

import redis

from tests.tcp_proxy import TcpProxy

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"  # nothing listens there: connection refused


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RedisProxy(TcpProxy):
    """The shared TCP proxy (tests.tcp_proxy) in front of the real Redis, with a Redis URL."""

    def __init__(self, target_url: str) -> None:
        target = urlsplit(target_url)
        super().__init__(target.hostname or "127.0.0.1", target.port or 6379)
        self._db = target.path.lstrip("/") or "0"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self._db}"


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
