"""How the gateway's clients reach a downstream: aiohttp's connection pool, limits, timeouts."""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

# Below uvicorn's 5 s keep-alive, so we drop an idle connection before the server does.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=50, keepalive_expiry=4)


class PooledTransport(AiohttpTransport):
    """httpx over aiohttp's connection pool (httpx-aiohttp), with aiohttp's connection
    failures named as httpx names them.

    httpcore's own pool checks every idle connection with a system call on every request,
    which cost the gateway ~1.5 ms of CPU per uncached match (bench-api); aiohttp's does not.
    httpx-aiohttp reports a refused connection and a dropped one as ConnectTimeout; here a
    refusal is a ConnectError and a connection closed without an answer a RemoteProtocolError,
    as with httpcore, so logs and problem details say what happened.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ServerTimeoutError):
                raise  # a real timeout
            if isinstance(cause, aiohttp.ClientConnectorError):
                raise httpx.ConnectError(str(exc), request=request) from cause
            if isinstance(cause, aiohttp.ServerDisconnectedError):
                raise httpx.RemoteProtocolError(str(exc), request=request) from cause
            raise


def as_timeout(value: httpx.Timeout | float) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    # Connecting inside our network is fast; a slow connect means the host is gone.
    return httpx.Timeout(value, connect=min(value, 3.0))
