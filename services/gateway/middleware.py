"""ASGI middleware: request ids in and out, rate-limit headers, one access-log line per request,
and the request body limit."""

from __future__ import annotations

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.access_log import access_fields, log_access
from shared.enums import RegisterKind
from shared.error_codes import ErrorCode
from shared.errors import problem_response
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


# Routes whose bodies stream (NDJSON bulk imports, register uploads): the registry limits their
# lines, in count and in length, as it reads them.
STREAMING_PATHS = frozenset(
    {"/v1/firms/bulk", "/v1/decisions/history"} | {f"/v1/registers/{kind}" for kind in RegisterKind}
)


def _too_large(max_bytes: int) -> str:
    return f"the request body is larger than {max_bytes} bytes"


class BodyLimitMiddleware:
    """Refuses a request body over ``max_bytes`` with a 413 problem: at once when its
    Content-Length says so, else as soon as the streamed bytes pass the limit (before the body
    is read whole, so a huge body costs neither memory nor a write)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, streaming_paths: frozenset[str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streaming_paths = streaming_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.streaming_paths:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            body = {
                "type": "https://finmatch.example/problems/payload_too_large",
                "title": "Payload too large",
                "status": 413,
                "code": ErrorCode.PAYLOAD_TOO_LARGE,
                "detail": _too_large(self.max_bytes),
                "instance": scope["path"],
            }
            await problem_response(413, body)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI passes an HTTPException from the body read on to the handlers.
                    raise HTTPException(413, detail=_too_large(self.max_bytes))
            return message

        await self.app(scope, limited, send)
