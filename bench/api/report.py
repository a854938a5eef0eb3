"""The printed report: the machine, the phases, CPU per request, the targets."""

from __future__ import annotations

import os
import platform
from collections import Counter
from importlib import metadata
from importlib.util import find_spec

import numpy as np
import psycopg
import redis

from bench.api.common import (
    TARGET_CACHED_FLOOR_RATIO,
    TARGET_OPEN_P99_MS,
    TARGET_OPEN_RATE,
    TARGET_UNCACHED_CPU_MS,
    TARGET_UNCACHED_RPS,
)
from bench.api.phases import Phase


def machine_info(db_url: str, cache: redis.Redis) -> list[tuple[str, str]]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    redis_version = str(cache.info("server").get("redis_version", "?"))
    cpus = f"{os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})"
    libraries = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("fastapi", "starlette", "pydantic", "uvicorn", "httpx", "redis", "orjson")
    )
    missing = [m for m in ("uvloop", "httptools") if find_spec(m) is None]
    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    http = "httptools" if find_spec("httptools") else "h11"
    server = f"uvicorn, 1 worker per service, {loop} loop, {http} HTTP parser"
    if missing:
        server += f" ({', '.join(missing)} not installed)"
    return [
        ("CPUs", cpus),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("platform", platform.platform()),
        ("PostgreSQL", str(row[0])),
        ("Redis", redis_version),
        ("libraries", libraries),
        ("servers", server),
        ("load avg", " / ".join(f"{load:.2f}" for load in os.getloadavg()) + " (1/5/15 min)"),
    ]


def print_report(
    info: list[tuple[str, str]],
    notes: list[str],
    phases: list[Phase],
    concurrency: int,
    open_loop: Phase,
) -> tuple[Phase, Phase, Phase, Phase]:
    uncached, cached, floor, hops = phases
    print("\nmachine")
    for label, value in info:
        print(f"  {label:<11} {value}")
    for note in notes:
        print(f"  {note}")

    print(
        f"\nGET /v1/firms/{{id}}/matches, {concurrency} concurrent"
        f"{'':<14}{'requests':>9} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'req/s':>7}"
        f" {'body KB':>8}"
    )
    for phase in phases:
        print(
            f"{phase.name:<52}{phase.requests:>9,} {phase.pct(50):>7.2f} {phase.pct(90):>7.2f} "
            f"{phase.pct(99):>7.2f} {phase.pct(100):>7.2f} {phase.rps:>7,.0f} "
            f"{np.mean(phase.sizes) / 1024:>8.1f}"
        )
    print("  latencies in ms, at the client (the load generator), request sent to body read")
    for phase in phases:
        if phase.requests < phase.requested:
            print(f"  {phase.name}: stopped at the time cap after {phase.requests:,} requests")

    print_open_loop(open_loop)

    names = ("gateway", "matching", "registry", "load generator", "PostgreSQL", "Redis")
    labels = ("gateway", "matching", "registry", "loadgen", "postgres", "redis")
    header = "".join(f"{label:>9}" for label in (*labels, "other", "machine"))
    print(f"\nCPU ms per request{'':<34}{header} {'busy':>5}")
    cores = len(os.sched_getaffinity(0))
    for phase in (*phases, open_loop):
        own = [phase.cpu_ms_per_request(n) for n in names]
        machine = phase.cpu_ms_per_request("machine")
        busy = sum(phase.cpu["machine"]) / (phase.seconds * cores)
        cells = "".join(f"{v:>9.2f}" for v in (*own, machine - sum(own), machine))
        print(f"{phase.name:<52}{cells} {busy:>5.0%}")
    print("  share of that CPU time spent in the kernel (system time)")
    for phase in (*phases, open_loop):
        shares = "".join(f"{phase.system_share(n):>9.0%}" for n in names)
        print(f"    {phase.name[:46]:<48}{shares}{'':>9}{phase.system_share('machine'):>9.0%}")
    print(
        "  other = the machine's busy CPU less the processes named: the kernel's network work "
        "not charged to them, and anything else running on the machine; busy = share of all "
        "CPUs. postgres counts the backends alive at the start and the end of the phase"
    )
    # A shared machine's speed varies from run to run (other work, CPU contention inflates
    # every process's CPU time). The floor's gateway CPU is a fixed piece of work measured in
    # the same run, so uncached costs in units of it compare across runs far better.
    yardstick = floor.cpu_ms_per_request("gateway")
    if yardstick > 0:
        units = ", ".join(
            f"{label} {uncached.cpu_ms_per_request(name) / yardstick:.1f}"
            for name, label in zip(names[:4], labels[:4], strict=True)
        )
        print(
            f"  uncached CPU per request in floor units (the floor's gateway CPU per request, "
            f"{yardstick:.2f} ms in this run): {units}"
        )

    cost_ratio = floor.rps / cached.rps
    p50_ratio = cached.pct(50) / floor.pct(50)
    gateway_ratio = cached.cpu_ms_per_request("gateway") / floor.cpu_ms_per_request("gateway")
    machine_ratio = cached.cpu_ms_per_request("machine") / floor.cpu_ms_per_request("machine")
    print(
        f"\ncached ÷ floor: {cost_ratio:.2f}× the cost per request (1/req/s), "
        f"{p50_ratio:.2f}× the p50; CPU per request: {gateway_ratio:.2f}× the gateway's, "
        f"{machine_ratio:.2f}× the machine's"
    )
    for phase in phases:
        client_share = sum(phase.cpu["load generator"]) / phase.seconds
        if client_share >= 0.9:
            print(
                f"  {phase.name}: the load generator used {client_share:.0%} of a CPU, so its "
                "req/s is the client's limit more than the server's"
            )
    # (a) holds only at the rate it names: a run at another --open-rate is not judged by it.
    at_rate = abs(open_loop.sent_rate - TARGET_OPEN_RATE) <= 0.02 * TARGET_OPEN_RATE
    uncached_cpu = uncached.cpu_ms_per_request("machine")
    targets = [
        (
            f"(a) open loop {TARGET_OPEN_RATE:g}/s: p99 ≤ {TARGET_OPEN_P99_MS:g} ms",
            f"{open_loop.pct(99):.1f} ms",
            at_rate
            and open_loop.pct(99) <= TARGET_OPEN_P99_MS
            and not open_loop.failed
            and not open_loop.unstored,
        ),
        (
            f"(b) uncached ≥ {TARGET_UNCACHED_RPS:g} requests/s at {concurrency}",
            f"{uncached.rps:,.0f}/s",
            uncached.rps >= TARGET_UNCACHED_RPS,
        ),
        (
            f"(b) machine CPU per uncached ≤ {TARGET_UNCACHED_CPU_MS:g} ms",
            f"{uncached_cpu:.2f} ms",
            uncached_cpu <= TARGET_UNCACHED_CPU_MS,
        ),
        (
            f"(c) cached ≤ {TARGET_CACHED_FLOOR_RATIO:g}× the floor's cost per request",
            f"{cost_ratio:.2f}×",
            cost_ratio <= TARGET_CACHED_FLOOR_RATIO,
        ),
    ]
    print("\ntargets")
    for target, actual, met in targets:
        print(f"  {target:<50} {actual:>12}  {'met' if met else 'NOT met'}")
    if not at_rate:
        print(
            f"  (a) is judged at {TARGET_OPEN_RATE:g}/s only: this run sent "
            f"{open_loop.sent_rate:,.1f}/s"
        )
    # What no uncached answer can beat here: the same calls with nothing to do at either end.
    print(
        f"  the hops floor (the uncached path's calls, precomputed bytes at each end): "
        f"p99 {hops.pct(99):.1f} ms, {hops.rps:,.0f}/s, machine CPU "
        f"{hops.cpu_ms_per_request('machine'):.2f} ms per request; the uncached path adds "
        f"{uncached.cpu_ms_per_request('machine') - hops.cpu_ms_per_request('machine'):.2f} ms "
        f"(the database read, the ranking, the answer's JSON, storing it, the match events)"
    )
    return uncached, cached, floor, hops


def print_open_loop(phase: Phase) -> None:
    """The open-loop phase: latency from the due time and from sending, the generator's lag,
    and what the generator itself cost beside the servers."""
    assert phase.rate is not None
    assert phase.lag_ms is not None
    assert phase.sent_latency_ms is not None
    quantiles = (50, 90, 99, 100)
    print(
        f"\nopen loop: GET /v1/firms/{{id}}/matches, uncached, due at {phase.rate:g}/s "
        f"whatever the answers do{'':<6}{'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}"
    )
    rows = (
        ("latency from the due time (what a firm sees)", phase.latency_ms),
        ("latency from sending (what wrk would report)", phase.sent_latency_ms),
        ("lag: due time to sending (the generator's)", phase.lag_ms),
    )
    for label, values in rows:
        cells = " ".join(f"{float(np.percentile(values, q)):>7.2f}" for q in quantiles)
        print(f"  {label:<83}{cells}")
    answered = phase.requests / phase.seconds
    print(
        f"  {phase.requests:,} requests; sent at {phase.sent_rate:,.1f}/s (asked "
        f"{phase.rate:g}/s), answered in {phase.seconds:.2f} s ({answered:,.1f}/s); late sends: "
        f"{phase.late(1.0):,} by more than 1 ms, {phase.late(10.0):,} by more than 10 ms"
    )
    if phase.failed:
        statuses = Counter(s for s in phase.statuses if s != 200)
        summary = ", ".join(f"{n:,}× {s or 'no answer'}" for s, n in statuses.most_common())
        print(f"  NOT answered 200: {phase.failed:,} ({summary}); their latency is counted too")
    if phase.unstored:
        print(
            f"  answered 200 but not stored in Redis: {phase.unstored:,} (the gateway's Redis "
            "pool ran out and its cache fell back to process memory: degraded)"
        )
    generator = sum(phase.cpu["load generator"])
    servers = sum(sum(phase.cpu[n]) for n in ("gateway", "matching", "registry"))
    busy = sum(phase.cpu["machine"]) / (phase.seconds * len(os.sched_getaffinity(0)))
    print(
        f"  CPU: the generator {generator / phase.seconds:.0%} of one CPU "
        f"({generator * 1000 / phase.requests:.2f} ms per request), the three services "
        f"{servers / phase.seconds:.0%} ({servers * 1000 / phase.requests:.2f} ms per request); "
        f"machine {busy:.0%} busy (all CPUs)"
    )
