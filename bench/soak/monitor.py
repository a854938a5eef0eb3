"""Each service's memory (RSS) and CPU, and the load generator's own CPU, read from /proc at
the end of every interval of the soak."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.api.cpu import cpu_seconds, cpu_ticks

GENERATOR = "load generator"


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a service that forks still counts whole)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                continue
    return out


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (VmRSS; 0 for a process that is gone)."""
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


@dataclass
class Reading:
    """The end of one interval: RSS of each service, CPU share of one core over the interval
    (services and the load generator), and the machine's busy share of all its CPUs."""

    rss: dict[str, int]
    cpu_share: dict[str, float]
    machine_share: float


async def watch(
    pids: dict[str, int],
    start: float,
    interval: float,
    count: int,
    on_reading: Callable[[int, Reading], None] | None = None,
) -> list[Reading]:
    """One reading at start + k × interval for k = 1..count (perf_counter times), each handed
    to ``on_reading`` as it is taken."""
    groups = {name: process_tree(pid) for name, pid in pids.items()} | {GENERATOR: [os.getpid()]}
    readings = []
    before = cpu_ticks(groups)
    for k in range(1, count + 1):
        delay = start + k * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        after = cpu_ticks(groups)
        spent = cpu_seconds(before, after)
        before = after
        share = {name: sum(spent[name]) / interval for name in groups}
        machine = sum(spent["machine"]) / interval / (os.cpu_count() or 1)
        readings.append(Reading({n: rss_bytes(p) for n, p in pids.items()}, share, machine))
        if on_reading is not None:
            on_reading(k, readings[-1])
    return readings
