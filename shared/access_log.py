"""Access-log lines: the internal services' middleware (X-Request-ID, X-Principal-Id) and the line
the gateway writes too, with the route template, status, latency and principal."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import UNMATCHED_ROUTE, route_template
from shared.request_context import request_id_from_headers, request_id_var

log = logging.getLogger("finmatch.access")


def access_fields(
    scope: Scope, status: int, seconds: float, principal_id: int | str | None
) -> dict[str, Any]:
    """The fields of one access line (``extra=``); the route is the template, not the path."""
    return {
        "route": route_template(scope),
        "path": scope["path"],
        "method": scope["method"],
        "status": status,
        "latency_ms": round(seconds * 1000, 2),
        "principal_id": principal_id,
    }


def log_access(fields: dict[str, Any]) -> None:
    """One access line: readable as text, every value also a field of its own in JSON."""
    route = fields["route"]
    log.info(
        "%s %s %s %.1fms principal=%s",
        fields["method"],
        fields["path"] if route == UNMATCHED_ROUTE else route,
        fields["status"],
        fields["latency_ms"],
        "-" if fields["principal_id"] is None else fields["principal_id"],
        extra=fields,
    )


def _principal_header(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The X-Principal-Id the gateway sent, when it is a number (it is only ever logged here)."""
    for name, value in headers:
        if name == b"x-principal-id":
            return int(value) if value.isdigit() and len(value) <= 19 else None
    return None


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = request_id_var.set(request_id_from_headers(scope["headers"]))
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            seconds = time.perf_counter() - started
            principal_id = _principal_header(scope["headers"])
            log_access(access_fields(scope, status, seconds, principal_id))
            request_id_var.reset(token)
