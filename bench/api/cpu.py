"""CPU time of the processes a phase reports, read from /proc."""

from __future__ import annotations

import os
from pathlib import Path


def database_backends(database: str) -> list[int]:
    """PostgreSQL backends serving ``database`` (their process title names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
            pids.append(int(entry.name))
    return pids


def cpu_ticks(
    groups: dict[str, list[int]], database: str | None = None
) -> dict[str, dict[int, tuple[int, int]]]:
    """(user, system) clock ticks of each process of each group; ``machine`` is the whole
    machine's busy time over all CPUs (pid 0). The backends serving ``database`` are added to
    the PostgreSQL group as they are found: the registry's pool opens some during a phase."""
    if database is not None:
        groups = groups | {"PostgreSQL": groups["PostgreSQL"] + database_backends(database)}
    ticks: dict[str, dict[int, tuple[int, int]]] = {}
    for name, pids in groups.items():
        ticks[name] = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended (a pooled database connection closed)
                continue
            ticks[name][pid] = (int(fields[11]), int(fields[12]))
    cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user + nice; system + irq + softirq + steal (idle and iowait are not busy)
    ticks["machine"] = {0: (cpu[0] + cpu[1], cpu[2] + cpu[5] + cpu[6] + cpu[7])}
    return ticks


def cpu_seconds(
    before: dict[str, dict[int, tuple[int, int]]], after: dict[str, dict[int, tuple[int, int]]]
) -> dict[str, tuple[float, float]]:
    """(user, system) seconds of each group between two readings. A process that started in
    between counts whole; one that ended in between is lost (a closed pooled connection)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, start in before.items():
        end = after[name]
        user = sum(u - start.get(p, (0, 0))[0] for p, (u, _s) in end.items()) / tick
        system = sum(s - start.get(p, (0, 0))[1] for p, (_u, s) in end.items()) / tick
        out[name] = (user, system)
    return out
