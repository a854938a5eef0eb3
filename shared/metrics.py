"""Prometheus metrics every service shares: request latency by route template, and ``/metrics``.

Process-wide metrics (latency, cache, breaker transitions, counters of events) live in
prometheus_client's default registry. What can only be read from one app's state at scrape time
(the model it serves, its breakers, its database pool) is a collector given to
``mount_metrics``: each app gets a registry of its own for those, so that building several apps
in one process (the tests do) never registers a name twice.

One uvicorn worker per process: no multiprocess mode.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Final

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A request that matched no route gets this label, so that scanners probing random paths cannot
# create a series per path.
UNMATCHED_ROUTE: Final = "<unmatched>"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# From a cached answer (about a millisecond) to a slow training call; Prometheus interpolates
# quantiles within a bucket, so there are more where the gateway's answers fall.
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# A `_created` series per counter and histogram child doubles what every scrape carries, for a
# timestamp that Prometheus does not need to compute rates.
disable_created_metrics()  # type: ignore[no-untyped-call]

REQUEST_DURATION: Final = Histogram(
    "finmatch_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by service, route template "
    f"({UNMATCHED_ROUTE} when no route matched), method and status.",
    ["service", "route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)


def route_template(scope: Scope) -> str:
    """The path template of the route that served ``scope`` (after routing), e.g.
    ``/v1/firms/{firm_id}/matches`` (without a convertor such as ``:id``); UNMATCHED_ROUTE
    when none did."""
    route = scope.get("route")
    path = getattr(route, "path_format", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def method_label(method: str) -> str:
    """The HTTP method, or "other" for anything unusual (a client chooses it freely)."""
    return method if method in _METHODS else "other"


class MetricsMiddleware:
    """Pure ASGI middleware: observes every HTTP request's latency in REQUEST_DURATION.

    The route is read from the scope after the app has answered: the router sets
    ``scope["route"]`` on the scope object that passes through every middleware.
    """

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service
        # Histogram.labels() converts, locks and looks up on every call; the label sets are
        # bounded (routes × methods × statuses), so their children are kept here.
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        key = (route_template(scope), method_label(scope["method"]), status)
        child = self._children.get(key)
        if child is None:
            route, method, _ = key
            child = REQUEST_DURATION.labels(self.service, route, method, str(status))
            self._children[key] = child
        child.observe(seconds)


def mount_metrics(
    app: FastAPI,
    service: str,
    *collectors: Collector,
    tags: Iterable[str] = ("probes",),
) -> CollectorRegistry:
    """Time every request of ``app`` and serve ``GET /metrics`` in the Prometheus text format.

    ``/metrics`` shows the process-wide registry and then this app's ``collectors`` (which read
    the app's state at scrape time). Call it after the app's other middleware is added, so that
    the time measured includes theirs. Returns the app's own registry.
    """
    own = CollectorRegistry()
    for collector in collectors:
        own.register(collector)
    app.add_middleware(MetricsMiddleware, service=service)

    async def metrics() -> Response:
        """Prometheus metrics of this process (text exposition format)."""
        return Response(
            generate_latest(REGISTRY) + generate_latest(own), media_type=CONTENT_TYPE_LATEST
        )

    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        response_class=Response,
        tags=list(tags),
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    )
    return own
