"""The open-loop load generator: requests sent on a fixed schedule, whatever the answers do.

wrk and the closed-loop client keep N requests in flight, so a server that slows down also
slows the client: the requests it would have sent meanwhile are never sent, and their waiting
is never measured (coordinated omission). Here request i is due at ``start + i / rate``. It is
sent then, as a task of its own, however many earlier ones are still unanswered, and its
latency runs from that due time to the whole body read. If the generator itself falls behind
(its event loop busy, the machine's CPUs taken), the request leaves late. That lateness is in
its latency too, and recorded apart as its lag, so a late client shows rather than hides.
"""

from __future__ import annotations

import asyncio
import os
import time
import zlib
from collections.abc import Sequence
from typing import Any

from bench.api.clients import FAILED, Get, getter
from bench.api.cpu import cpu_seconds, cpu_ticks

# Connections the generator may open at once. An open loop must not queue in its own pool
# while the server has room; when answers fall far behind this many, they queue here, and that
# time still counts (latency runs from the due time).
MAX_CONNECTIONS = 256
# (ns from due to body read, status, crc32 of the body, body length, ns from due to sending,
#  ns from sending to body read)
Result = tuple[int, int, int, int, int, int]


async def one(get: Get, path: str, due_ns: int) -> Result:
    """One request due at ``due_ns`` (perf_counter_ns): its result row."""
    clock = time.perf_counter_ns
    sent = clock()
    try:
        status, body = await get(path)
    except FAILED:
        body, status = b"", 0
    done = clock()
    return (done - due_ns, status, zlib.crc32(body), len(body), sent - due_ns, done - sent)


async def schedule(get: Get, paths: Sequence[str], rate: float, start_ns: int) -> list[Result]:
    """Every path once, path i due at ``start_ns + i / rate`` s; the results in path order."""
    interval_ns = 1e9 / rate
    tasks: list[asyncio.Task[Result]] = []
    for i, path in enumerate(paths):
        due = start_ns + round(i * interval_ns)
        delay = (due - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(get, path, due)))
    return list(await asyncio.gather(*tasks))


async def warm(get: Get, paths: Sequence[str], connections: int) -> None:
    """Open ``connections`` connections (untimed): that many requests at once, then the rest."""
    for k in range(0, len(paths), connections):
        await asyncio.gather(*(get(p) for p in paths[k : k + connections]))


async def open_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Run an open-loop phase from the bench's spec: the results, wall time and CPU."""
    async with getter(spec, MAX_CONNECTIONS, aiohttp=True) as get:
        await warm(get, spec["warmup_paths"], spec["concurrency"])
        groups = spec["pids"] | {"load generator": [os.getpid()]}
        before = cpu_ticks(groups, spec["database"])
        start = time.perf_counter_ns() + 10_000_000  # the first request due 10 ms from now
        results = await schedule(get, spec["paths"], spec["rate"], start)
        seconds = (time.perf_counter_ns() - start) / 1e9
        after = cpu_ticks(groups, spec["database"])
    alive = {name: len(before[name].keys() | after[name].keys()) for name in before}
    return {
        "results": results,
        "seconds": seconds,
        "cpu": cpu_seconds(before, after),
        "processes": alive,
    }
