"""The run: a database, the seed, the three services, the capacity ramp, the soak, the
count-back, the report."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from bench.api.cluster import Services, services, train_model
from bench.api.common import DEFAULT_ADMIN_URL, DEFAULT_REDIS_URL, BenchFailure
from bench.import_firms import create_database, database_url, drop_database
from bench.soak import load, report
from bench.soak.countback import count_back
from bench.soak.monitor import Reading, watch
from bench.soak.traffic import MIX, Traffic
from bench.soak.world import World, auth, read_world, seed

RAMP_STEPS = (2, 4, 8, 16, 32, 64, 128, 256)
RAMP_GAIN = 1.05  # the ramp stops at the first step that adds less than 5% to the best so far
# The soak measures the services, not the limiter: every role may send far more than it does.
UNLIMITED = "100000000"
MODEL_WAIT_SECONDS = 60.0


@dataclass
class Backend:
    db_url: str
    redis_url: str  # "" runs the gateway's cache and matching's events in-process
    label: str


@contextmanager
def backend(args: argparse.Namespace, workdir: Path) -> Iterator[Backend]:
    if args.backend == "sqlite":
        yield Backend(f"sqlite:///{workdir / 'registry.db'}", "", "SQLite, in-process caches")
        return
    admin_url = os.environ.get("FINMATCH_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)
    redis_url = os.environ.get("FINMATCH_BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    cache = redis.Redis.from_url(redis_url)
    forget_keys(cache, args.redis_prefix)
    create_database(admin_url, args.database)
    try:
        db_url = database_url(admin_url, args.database)
        with create_engine_version(db_url) as pg:
            label = f"PostgreSQL {pg}, Redis {cache.info('server').get('redis_version', '?')}"
        yield Backend(db_url, redis_url, label)
    finally:
        drop_database(admin_url, args.database)
        forget_keys(cache, args.redis_prefix)
        cache.close()


@contextmanager
def create_engine_version(db_url: str) -> Iterator[str]:
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    yield str(row[0]) if row else "?"


def forget_keys(cache: redis.Redis, prefix: str) -> None:
    """Delete the keys under the bench's prefix: other users of the Redis keep theirs."""
    batch: list[bytes] = []
    for key in cache.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            cache.unlink(*batch)
            batch.clear()
    if batch:
        cache.unlink(*batch)


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="finmatch-bench-soak-") as tmp:
        workdir = Path(tmp)
        with backend(args, workdir) as where:
            started = time.perf_counter()
            keys = seed(where.db_url, args.firms, args.applications)
            print(
                f"seeded {args.firms:,} firms and {args.applications:,} applications "
                f"({where.label}, {time.perf_counter() - started:.1f} s)",
                flush=True,
            )
            settings = {
                f"FINMATCH_RATE_LIMIT_{role}": UNLIMITED
                for role in ("PORTAL", "INSTITUTION", "OFFICIAL", "ADMIN")
            } | {"FINMATCH_REDIS_PREFIX": args.redis_prefix}
            # The floor routes of bench.api's apps are never called here: their files stay empty.
            floor, firm = workdir / "floor.json", workdir / "firm.json"
            with services(where.db_url, where.redis_url, floor, firm, settings) as svc:
                world = read_world(svc.gateway.url, keys)
                model = prepare_model(args, svc, world)
                print(
                    f"world: {len(world.firms):,} firms, {len(world.products)} products of "
                    f"institution {world.institution_id}, {len(world.open_leads)} open leads; "
                    f"model: {model}",
                    flush=True,
                )
                result = asyncio.run(soak(args, svc, world))
            result["backend"] = where.label
            result["model"] = model
    return finish(args, result)


def prepare_model(args: argparse.Namespace, svc: Services, world: World) -> str:
    if not args.train:
        return "the rule-and-cost prior (no --train)"
    outcome = train_model(svc.gateway.url, svc.admin_key)
    version = str(outcome["version"])
    firms = [f for f, consent in world.firms.items() if consent]
    deadline = time.monotonic() + MODEL_WAIT_SECONDS
    with httpx.Client(base_url=svc.gateway.url, headers=auth(world.keys["portal"])) as client:
        for firm in firms:  # a firm never asked before: no stored answer of the old model
            answer = client.get(f"/v1/firms/{firm}/matches", timeout=30.0)
            if answer.status_code == 200 and answer.json().get("model_version") == version:
                return f"learned {outcome['algorithm']} {version}"
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
    raise BenchFailure(f"the gateway did not serve model {version} within {MODEL_WAIT_SECONDS} s")


async def ramp(http: httpx.AsyncClient, traffic: Traffic, args: argparse.Namespace) -> Any:
    """Closed loop at rising concurrency; the capacity is the best rate of 2xx answers."""
    best, steps = 0.0, []
    for concurrency in (c for c in RAMP_STEPS if c <= args.ramp_max):
        samples, seconds = await load.closed_loop(http, traffic, concurrency, args.ramp_seconds)
        ok = sum(200 <= s < 300 for s in samples.status)
        errors = sum(report.bad(s) for s in samples.status)
        step = {
            "concurrency": concurrency,
            "ok_per_second": ok / seconds,
            "p50_ms": report.pct(samples.latency_ms, 50),
            "p99_ms": report.pct(samples.latency_ms, 99),
            "errors": errors,
        }
        steps.append(step)
        print(
            f"ramp: {concurrency:>3} concurrent  {step['ok_per_second']:7.1f} 2xx/s  "
            f"p50 {step['p50_ms']:.1f} ms  p99 {step['p99_ms']:.1f} ms  errors {errors}",
            flush=True,
        )
        if step["ok_per_second"] < best * RAMP_GAIN:
            break
        best = max(best, step["ok_per_second"])
    return best, steps


async def soak(args: argparse.Namespace, svc: Services, world: World) -> dict[str, Any]:
    traffic = Traffic(world, seed=args.seed)
    connections = max(args.ramp_max, 128)
    async with load.client(svc.gateway.url, connections) as http:
        capacity, steps = (None, []) if args.rate is not None else await ramp(http, traffic, args)
        rate = args.rate if capacity is None else args.load * capacity
        if rate <= 0:
            raise BenchFailure("the ramp measured no capacity (no 2xx answer)")
        count = max(1, round(args.minutes * 60 / args.interval_seconds))
        seconds = count * args.interval_seconds
        print(
            f"soak: {rate:.1f} requests/s"
            + ("" if capacity is None else f" ({args.load:.0%} of {capacity:.1f}/s)")
            + f" for {seconds:g} s, open loop; a row every {args.interval_seconds:g} s",
            flush=True,
        )
        report.print_rows([], args.interval_seconds)
        samples = load.Samples()
        start = time.perf_counter() + 0.2

        def live(k: int, reading: Reading) -> None:
            # Requests of interval k still in flight are left out here; the final table has them.
            print(report.row_line(report.row_of(samples, reading, k, args.interval_seconds)))

        cpu_before = time.process_time()
        watcher = asyncio.create_task(
            watch(svc.pids, start, args.interval_seconds, count, on_reading=live)
        )
        await load.open_loop(http, traffic, rate, seconds, start, args.max_in_flight, samples)
        readings = await watcher
        generator_cpu = time.process_time() - cpu_before
        wall = time.perf_counter() - start
        tallies = await count_back(http, traffic.ledger, world.keys)
    rows = report.rows_of(samples, readings, args.interval_seconds)
    return {
        "rate": rate,
        "capacity": capacity,
        "ramp": steps,
        "mix": MIX,
        "requests": len(samples),
        "intervals": rows,
        "targets": report.targets(samples, rows, args.interval_seconds),
        "countback": tallies,
        "unacknowledged": dict(traffic.ledger.unacknowledged),
        "problems": dict(samples.problems.most_common()),
        "surprises": traffic.ledger.surprises,
        "substituted": dict(traffic.substituted),
        "generator": {
            "cpu_seconds": generator_cpu,
            "cpu_percent_of_one": 100 * generator_cpu / wall,
            "cpu_ms_per_request": 1000 * generator_cpu / max(1, len(samples)),
        },
    }


def finish(args: argparse.Namespace, result: dict[str, Any]) -> int:
    print("\nfinal table (every request of each interval, answered or dropped)")
    report.print_rows(result["intervals"], args.interval_seconds)
    report.print_targets(result["targets"])
    if result["problems"]:
        print("  the errors: " + ", ".join(f"{k} ×{n}" for k, n in result["problems"].items()))
    report.print_countback(result["countback"], result["unacknowledged"])
    generator = result["generator"]
    print(
        f"\nload generator: {generator['cpu_seconds']:.1f} s of CPU, "
        f"{generator['cpu_percent_of_one']:.0f}% of one CPU, "
        f"{generator['cpu_ms_per_request']:.2f} ms per request"
    )
    if result["substituted"]:
        shown = ", ".join(f"{op} {n}" for op, n in result["substituted"].items())
        print(f"drawn but sent as a match (nothing to send): {shown}")
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}, {result['backend']}, model {result['model']}, load avg "
        + " / ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(report.as_json(**result), option=orjson.OPT_INDENT_2))
    wrong = [k for k, t in result["countback"].items() if t.problems] + result["surprises"]
    if wrong:
        raise BenchFailure(f"the count-back found wrong writes: {wrong[:10]}")
    return 0
