"""The load generator's two HTTP clients behind one ``get(path) -> (status, body)``.

``raw`` (bench.api.rawhttp, the default without wrk) costs the machine a fraction of what
``python`` (httpx) does; both read every answer's bytes, which the bench checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

from bench.api.rawhttp import TIMEOUT_SECONDS as REQUEST_TIMEOUT_SECONDS
from bench.api.rawhttp import Answer, RawClient

Get = Callable[[str], Awaitable[Answer]]
# What a failed request raises, from either client: it is recorded with status 0.
FAILED = (httpx.HTTPError, OSError, TimeoutError)


def httpx_get(client: httpx.AsyncClient) -> Get:
    async def get(path: str) -> Answer:
        response = await client.get(path)
        return response.status_code, response.content

    return get


@asynccontextmanager
async def getter(
    spec: dict[str, Any], connections: int, *, aiohttp: bool = False
) -> AsyncIterator[Get]:
    """GET through the spec's client: ``raw`` (bench.api.rawhttp) or ``python`` (httpx)."""
    if spec.get("client", "python") == "raw":
        async with RawClient(spec["base_url"], spec["headers"], connections) as raw:
            yield raw.get
        return
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=60
    )
    # The open loop's httpx goes over aiohttp's pool, as the gateway sends: less client CPU
    # than httpcore's when many requests are in flight.
    transport = AiohttpTransport(limits=limits) if aiohttp else None
    async with httpx.AsyncClient(
        base_url=spec["base_url"],
        headers=spec["headers"],
        limits=limits,
        timeout=REQUEST_TIMEOUT_SECONDS,
        transport=transport,
    ) as client:
        yield httpx_get(client)
