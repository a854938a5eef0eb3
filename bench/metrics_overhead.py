"""Per-request cost of shared.metrics.MetricsMiddleware, and of one JSON access-log line.

In-process, no network: (1) the middleware alone around an ASGI app that answers at once, and
(2) the gateway's real app answering GET /healthz with and without the middleware (the
difference includes the route lookup the middleware does after the answer). Also (3) one
access line through the JSON formatter and its masking, written to a null stream.

    .venv/bin/python -m bench.metrics_overhead [--requests 20000] [--repeat 7]

(1) and (2) alternate short batches with and without the middleware and print medians over
the rounds, in microseconds of CPU time per request; (3) prints the median and best of the
repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import time

from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.config import GatewaySettings
from services.gateway.main import create_app
from shared.access_log import access_fields, log_access
from shared.logging import configure_logging
from shared.metrics import MetricsMiddleware


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    return None


def _scope(path: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"x-request-id", b"bench-1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _per_request_us(app: ASGIApp, scope: Scope, requests: int) -> float:
    # CPU time of this process, not wall time: on a shared machine the wait for a core would
    # otherwise dominate.
    started = time.process_time()
    for _ in range(requests):
        await app(dict(scope), _receive, _send)
    return (time.process_time() - started) / requests * 1e6


async def _compare(bare: ASGIApp, wrapped: ASGIApp, scope: Scope, n: int, rounds: int) -> None:
    """Alternate short batches of each, so that the load of other processes on the machine
    falls on both alike; report medians over the rounds."""
    for app in (bare, wrapped):  # warm up: label children, caches, code paths
        await _per_request_us(app, scope, 200)
    without, with_it = [], []
    for _ in range(rounds):
        without.append(await _per_request_us(bare, scope, n))
        with_it.append(await _per_request_us(wrapped, scope, n))
    differences = [w - b for w, b in zip(with_it, without, strict=True)]
    print(
        f"  without {statistics.median(without):.2f} µs, with {statistics.median(with_it):.2f} µs"
        f" per request; overhead median {statistics.median(differences):.2f} µs "
        f"(p25 {statistics.quantiles(differences, n=4)[0]:.2f}, "
        f"p75 {statistics.quantiles(differences, n=4)[2]:.2f})"
    )


def _gateway_settings() -> GatewaySettings:
    return GatewaySettings(internal_token="bench-only-token", redis_url=None)


def _gateway_without_metrics() -> ASGIApp:
    app = create_app(_gateway_settings())
    app.user_middleware = [m for m in app.user_middleware if m.cls is not MetricsMiddleware]
    return app


async def main(requests: int, repeat: int) -> None:
    route_scope = _scope("/v1/firms/1/matches") | {
        "route": Route("/v1/firms/{firm_id}/matches", _answer)
    }
    rounds = repeat * 10
    print(f"(1) MetricsMiddleware alone, {rounds} rounds of {requests // 10} requests each")
    await _compare(
        _answer, MetricsMiddleware(_answer, service="bench"), route_scope, requests // 10, rounds
    )

    print(f"(2) gateway app, GET /healthz, {rounds} rounds of {requests // 40} requests each")
    await _compare(
        _gateway_without_metrics(),
        create_app(_gateway_settings()),
        _scope("/healthz"),
        requests // 40,
        rounds,
    )

    print(f"(3) one JSON access line (masking included), {requests} lines × {repeat}")
    configure_logging("bench", "INFO", "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(io.StringIO())
    fields = access_fields(route_scope, 200, 0.0123, 42)
    timings = []
    for _ in range(repeat):
        handler.setStream(io.StringIO())
        started = time.process_time()
        for _ in range(requests):
            log_access(fields)
        timings.append((time.process_time() - started) / requests * 1e6)
    print(f"  median {statistics.median(timings):.2f} µs, best {min(timings):.2f} µs per line")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.repeat))
