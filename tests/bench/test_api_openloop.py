"""The API bench's open-loop generator keeps its schedule while the server stalls, and counts
the stall in every request due during it (no coordinated omission)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from bench.api.clients import getter
from bench.api.openloop import MAX_CONNECTIONS, schedule

STALL_SECONDS = 0.3
RATE = 100.0
REQUESTS = 40


async def serve_with_a_stall() -> tuple[web.AppRunner, str]:
    """A server whose first request holds a lock for STALL_SECONDS; every request takes it."""
    lock = asyncio.Lock()
    first = True

    async def handler(request: web.Request) -> web.Response:
        nonlocal first
        async with lock:
            if first:
                first = False
                await asyncio.sleep(STALL_SECONDS)
        return web.Response(body=request.path.encode())

    app = web.Application()
    app.router.add_get("/{n}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def measure(kind: str) -> list[tuple[int, int, int, int, int, int]]:
    runner, url = await serve_with_a_stall()
    try:
        spec = {"client": kind, "base_url": url, "headers": {}}
        async with getter(spec, MAX_CONNECTIONS, aiohttp=True) as get:
            start = time.perf_counter_ns() + 20_000_000
            return await schedule(get, [f"/{i}" for i in range(REQUESTS)], RATE, start)
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("kind", ["raw", "python"])
def test_requests_due_during_a_stall_count_it_from_their_due_time(kind: str) -> None:
    results = asyncio.run(measure(kind))
    assert [r[1] for r in results] == [200] * REQUESTS
    assert [r[3] for r in results] == [len(f"/{i}") for i in range(REQUESTS)]  # each its own
    for latency, _status, _crc, _size, lag, from_sending in results:
        assert latency == lag + from_sending  # due → sent → answered
    # Request i is due at i / RATE; the stall ends STALL_SECONDS after request 0 arrived, so a
    # request due during it waits at least the rest of the stall, counted from its due time
    # (a closed-loop client would not even have sent it yet).
    for i in range(1, int(STALL_SECONDS * RATE) - 5):
        assert results[i][0] / 1e9 >= STALL_SECONDS - i / RATE - 0.02, i
    # The generator sent them while the server stalled rather than waiting for answers: each
    # left well before request 0 was answered (its lag is not the stall).
    answered_first = results[0][0] / 1e9
    for i in range(1, int(STALL_SECONDS * RATE) - 5):
        assert i / RATE + results[i][4] / 1e9 < answered_first, i
