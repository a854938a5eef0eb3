"""ASGI middleware: request ids in and out, rate-limit headers, one access-log line per request."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.access_log import access_fields, log_access
from shared.request_context import request_id_from_headers, request_id_var


class RequestContextMiddleware:
    """Accepts a sane X-Request-ID or makes one; echoes it; adds RateLimit headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from_headers(scope["headers"])
        token = request_id_var.set(request_id)
        state: dict[str, Any] = scope.setdefault("state", {})
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                # A 429 already carries these fields (and Retry-After); a field sent twice
                # would read as a list ("3, 3").
                present = {name.lower() for name, _value in headers}
                for name, value in (state.get("rate_limit_headers") or {}).items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), str(value).encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            # Set by services.gateway.auth once the key is known (and within its limit).
            principal_id = getattr(state.get("principal"), "id", None)
            log_access(access_fields(scope, status, seconds, principal_id))
            request_id_var.reset(token)
