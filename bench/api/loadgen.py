"""The Python load generator: the child process ``python -m bench.api --loadgen`` runs."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
import zlib
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import orjson

from bench.api.clients import FAILED, Get, getter
from bench.api.cpu import cpu_seconds, cpu_ticks
from bench.api.openloop import open_load


async def drive(
    get: Get,
    paths: Sequence[str],
    n: int,
    concurrency: int,
    deadline: float | None,
) -> list[tuple[int, int, int, int]]:
    """``n`` GETs of paths[i % len(paths)] by ``concurrency`` workers, or fewer at the deadline.

    One (nanoseconds, status, crc32 of the body, body length) per completed request, in order
    of sending. Requests are taken in order, so the completed ones are always the first ones.
    """
    out: list[tuple[int, int, int, int] | None] = [None] * n
    taken = itertools.count()
    clock = time.perf_counter_ns

    async def worker() -> None:
        while True:
            i = next(taken)
            if i >= n or (deadline is not None and time.perf_counter() > deadline):
                return
            started = clock()
            try:
                status, body = await get(paths[i % len(paths)])
            except FAILED:
                body, status = b"", 0
            out[i] = (clock() - started, status, zlib.crc32(body), len(body))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = [r for r in out if r is not None]
    if any(r is None for r in out[: len(done)]):
        raise RuntimeError("completed requests are not a prefix")  # cannot happen
    return done


async def load(spec: dict[str, Any]) -> dict[str, Any]:
    concurrency = spec["concurrency"]
    async with getter(spec, concurrency) as get:
        warm = spec["warmup_paths"]
        await drive(get, warm, spec["warmup"], concurrency, None)
        groups = spec["pids"] | {"load generator": [os.getpid()]}
        before = cpu_ticks(groups, spec["database"])
        started = time.perf_counter()
        results = await drive(
            get, spec["paths"], spec["requests"], concurrency, started + spec["max_seconds"]
        )
        seconds = time.perf_counter() - started
        after = cpu_ticks(groups, spec["database"])
    alive = {name: len(before[name].keys() | after[name].keys()) for name in before}
    return {
        "results": results,
        "seconds": seconds,
        "cpu": cpu_seconds(before, after),
        "processes": alive,
    }


def loadgen_main(spec_file: str, out_file: str) -> int:
    # httpcore asks sniffio which event loop runs, several times per request; sniffio is not
    # installed here, and each failed import searches sys.path again (~50 µs). A None entry
    # makes the import fail at once, so the load generator spends its CPU on HTTP instead.
    # Only this process: the services keep the environment as it is.
    if find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]
    spec = orjson.loads(Path(spec_file).read_bytes())
    # A spec with a rate is an open-loop phase (bench.api.openloop); else a closed loop.
    run = open_load(spec) if spec.get("rate") else load(spec)
    Path(out_file).write_bytes(orjson.dumps(asyncio.run(run)))
    return 0
