"""httpx over aiohttp's connection pool, with aiohttp's connection failures named as httpx's.

The gateway's clients of the other services and the registry's webhook dispatcher send through
it. httpcore's own pool checks every idle connection with a system call (``getpeername``) on
every request, and so costs more CPU per request the more connections it holds: ~1.5 ms of CPU
per uncached match in the gateway (bench-api), and about half of the webhook dispatcher's CPU
per event (bench-webhooks). aiohttp's pool does not.
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


class PooledTransport(AiohttpTransport):
    """httpx-aiohttp's transport; it reports a refused connection and a dropped one as
    ConnectTimeout. Here a refusal (or a TLS handshake that failed) is a ConnectError that
    says what the socket or TLS said (``[SSL: CERTIFICATE_VERIFY_FAILED] …``), and a
    connection closed without an answer a RemoteProtocolError, as with httpcore, so logs,
    problem details and the webhook delivery log say what happened.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ServerTimeoutError):
                raise  # a real timeout
            if isinstance(cause, aiohttp.ClientConnectorError):
                raise httpx.ConnectError(str(cause.os_error), request=request) from cause
            if isinstance(cause, aiohttp.ServerDisconnectedError):
                raise httpx.RemoteProtocolError(str(exc), request=request) from cause
            raise
