"""The run: world, cluster, model, warm-up, the four timed phases, the report."""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import psycopg
import redis

from bench.api.checks import (
    Expectation,
    cache_keys,
    check_answer,
    check_statuses,
    verify_open,
    verify_same_bytes,
    verify_uncached,
    wait_for_model,
)
from bench.api.cluster import services, train_model
from bench.api.common import (
    BENCH_DATABASE,
    CACHE_PREFIX,
    CAPTURE_FIRMS,
    FLOOR_PATH,
    HOPS_PATH,
    OPEN_CONNECTIONS,
    OPEN_FIRMS,
    OPEN_QUERIES,
    PROFILE_REQUESTS,
    WAIT_FIRMS,
    BenchFailure,
    matches_path,
)
from bench.api.cprofiling import summarize
from bench.api.phases import Runner
from bench.api.profiling import py_spy, summarize_profile
from bench.api.report import machine_info, print_report
from bench.api.seeding import build_world
from bench.import_firms import create_database, database_url, drop_database


def run(args: argparse.Namespace, admin_url: str, redis_url: str) -> int:
    db_url = database_url(admin_url, BENCH_DATABASE)
    cache = redis.Redis.from_url(redis_url)
    cache.flushdb()  # only the bench's own Redis database (DB 7 by default)
    create_database(admin_url, BENCH_DATABASE)
    try:
        with tempfile.TemporaryDirectory(prefix="finmatch-bench-api-") as tmp:
            return measure(args, db_url, redis_url, cache, Path(tmp))
    finally:
        drop_database(admin_url, BENCH_DATABASE)
        cache.flushdb()
        cache.close()


def fill_firm_entries(db_url: str, redis_url: str) -> int:
    """Every firm's entry in the bench's Redis, under the gateway's prefix."""
    from services.registry.db import make_engine
    from services.registry.firm_cache import FirmCache

    engine = make_engine(db_url)
    cache = FirmCache(redis_url, prefix=CACHE_PREFIX, timeout_seconds=10.0)
    try:
        return cache.fill(engine)
    finally:
        cache.close()
        engine.dispose()


def cprofile_pass(
    runner: Runner, pids: dict[str, int], outdir: Path, firms: list[int], warm: list[int]
) -> int:
    """The uncached phase alone, at the run's concurrency, with each service's cProfile window
    open around it; the profiles go to ``outdir`` and their summary to stdout."""
    outdir.mkdir(parents=True, exist_ok=True)
    files = {name: outdir / f"{name}.prof" for name in pids}
    for path in files.values():
        path.unlink(missing_ok=True)
    # The load generator opens its connections (uncached warm-up requests) inside the phase;
    # the window opens now, so they are in it too, a few dozen among the measured requests.
    for pid in pids.values():
        os.kill(pid, signal.SIGUSR1)
    phase = runner.run(
        "uncached under cProfile",
        [matches_path(f) for f in firms],
        len(firms),
        [matches_path(f) for f in warm],
        len(warm),
    )
    for pid in pids.values():
        os.kill(pid, signal.SIGUSR2)
    check_statuses(phase)
    deadline = time.monotonic() + 60
    while not all(p.exists() and p.stat().st_size for p in files.values()):
        if time.monotonic() > deadline:
            raise BenchFailure(f"cProfile files not written: {files}")
        time.sleep(0.5)
    time.sleep(1.0)  # a large profile may still be being written
    print(
        f"\n{phase.requests:,} uncached requests under cProfile, {phase.rps:,.0f} req/s (slowed "
        f"by profiling); CPU ms per request: "
        + "; ".join(
            f"{name} {phase.cpu_ms_per_request(name):.2f}"
            for name in ("gateway", "matching", "registry", "load generator", "machine")
        )
    )
    for name, path in files.items():
        print()
        for line in summarize(name, path, phase.cpu_ms_per_request(name), phase.requests):
            print(line)
    return 0


def measure(
    args: argparse.Namespace, db_url: str, redis_url: str, cache: redis.Redis, workdir: Path
) -> int:
    started = time.perf_counter()
    world = build_world(db_url, args.firms, args.applications, args.products)
    print(
        f"world: {len(world.firm_ids):,} firms, {world.products:,} active products, "
        f"{world.decided:,} decided applications ({time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    firms = world.firm_ids
    wait_firms = firms[:WAIT_FIRMS]
    capture_firms = firms[WAIT_FIRMS : WAIT_FIRMS + CAPTURE_FIRMS]
    open_firms = firms[WAIT_FIRMS + CAPTURE_FIRMS : WAIT_FIRMS + CAPTURE_FIRMS + OPEN_FIRMS]
    measured = firms[WAIT_FIRMS + CAPTURE_FIRMS + OPEN_FIRMS :][: args.uncached]
    floor_file = workdir / "floor-body.json"
    firm_file = workdir / "firm-body.json"
    headers = {"Authorization": f"Bearer {world.portal_key}"}

    with services(
        db_url,
        redis_url,
        floor_file,
        firm_file,
        cprofile_dir=args.cprofile,
        firm_entries=not args.no_firm_entries,
    ) as svc:
        expected_model: str | None = None  # with --prior, the first answer names it
        if args.prior:
            model_note = "rule-and-cost prior (--prior: no model trained)"
        else:
            started = time.perf_counter()
            outcome = train_model(svc.gateway.url, svc.admin_key)
            expected_model = str(outcome["version"])
            model_note = (
                f"learned: {outcome['algorithm']} {expected_model}, trained through "
                f"POST /v1/admin/models/train on {world.decided:,} decided applications "
                f"({time.perf_counter() - started:.1f} s, not measured)"
            )
            print(f"model: {model_note}", flush=True)

        with httpx.Client(base_url=svc.gateway.url, headers=headers, timeout=30.0) as client:
            if expected_model is None:
                first = client.get(matches_path(wait_firms[0]))
                if first.status_code != 200:
                    raise BenchFailure(f"first match answered {first.status_code}: {first.text}")
                answer = first.json()
                expected_model = str(answer["model_version"])
                if not answer["is_prior"]:
                    raise BenchFailure("--prior, but matching serves a learned model")
            else:
                answer = wait_for_model(client, cache, wait_firms, world.portal_id, expected_model)
            expect = Expectation(
                expected_model, args.prior, str(answer["catalogue_version"]), world.products
            )
            captured: dict[int, bytes] = {}
            for firm in capture_firms:
                response = client.get(matches_path(firm))
                if response.status_code != 200:
                    raise BenchFailure(f"warm-up answered {response.status_code}")
                problems = check_answer(response.json(), firm, expect)
                if problems:
                    raise BenchFailure(f"warm-up firm {firm}: " + "; ".join(problems))
                captured[firm] = response.content

        # The cached firms: those whose answers are closest to the median size; the floor
        # answers the bytes of the median one among them.
        median = float(np.median([len(b) for b in captured.values()]))
        cached_firms = sorted(captured, key=lambda f: abs(len(captured[f]) - median))[
            : args.cached_firms
        ]
        floor_firm = sorted(cached_firms, key=lambda f: len(captured[f]))[len(cached_firms) // 2]
        floor_file.write_bytes(captured[floor_firm])
        firm_answer = httpx.get(
            f"{svc.registry.url}/v1/firms/{floor_firm}",
            headers={
                "X-Internal-Token": svc.internal_token,
                "X-Principal-Id": str(world.portal_id),
            },
        )
        if firm_answer.status_code != 200:
            raise BenchFailure(f"the registry answered {firm_answer.status_code} for a firm")
        firm_file.write_bytes(firm_answer.content)

        if not args.no_firm_entries:
            # The seed wrote the firms straight into the database; through the API each write
            # would have written its entry (the registry's write-through). Written here as the
            # registry's `firm-entries fill` does, so each uncached request finds its firm's.
            started = time.perf_counter()
            filled = fill_firm_entries(db_url, redis_url)
            entries_note = (
                f"firm entries: {filled:,} written to Redis as the registry's write-through "
                f"would have ({time.perf_counter() - started:.1f} s, not measured); the "
                "gateway reads each uncached request's firm from its entry"
            )
        else:
            entries_note = (
                "firm entries: none (--no-firm-entries): the gateway asks the registry for "
                "each uncached request's firm"
            )
        print(entries_note, flush=True)

        redis_pid = int(cache.info("server")["process_id"])

        def processes() -> dict[str, list[int]]:
            """The processes whose CPU time each phase reports, looked up at its start."""
            with psycopg.connect(db_url) as conn:
                # The server's own processes; the load generator adds the bench's backends.
                backends = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"
                ).fetchall()
            groups = {name: [pid] for name, pid in svc.pids.items()}
            return groups | {"PostgreSQL": [int(r[0]) for r in backends], "Redis": [redis_pid]}

        runner = Runner(
            svc.gateway.url,
            headers,
            processes,
            args.concurrency,
            args.max_seconds,
            workdir,
            client=args.client,
        )
        if args.cprofile is not None:
            return cprofile_pass(runner, svc.pids, args.cprofile, measured, open_firms)

        before = cache_keys(cache, world.portal_id)
        uncached = runner.run(
            "uncached: each request a new firm → matching",
            [matches_path(f) for f in measured],
            len(measured),
            [matches_path(f) for f in open_firms],
            len(open_firms),
        )
        eligible = verify_uncached(uncached, measured, cache, world.portal_id, expect, before)

        open_paths = [matches_path(f) + q for q in OPEN_QUERIES for f in measured]
        open_paths = open_paths[: round(args.open_rate * args.open_seconds)]
        before = cache_keys(cache, world.portal_id)
        open_loop = runner.run_open(
            f"open loop: uncached, due at {args.open_rate:g}/s",
            open_paths,
            args.open_rate,
            [matches_path(f) + OPEN_QUERIES[0] for f in open_firms],
            OPEN_CONNECTIONS,
        )
        open_loop.unstored = verify_open(
            open_loop, open_paths, cache, world.portal_id, expect, before
        )

        cached_paths = [matches_path(f) for f in cached_firms]
        keys_before = sum(len(v) for v in cache_keys(cache, world.portal_id).values())
        cached = runner.run(
            f"cached: {len(cached_firms)} firms, answer from Redis",
            cached_paths,
            args.cached,
            cached_paths,
            args.warmup,
        )
        verify_same_bytes(
            cached, [(zlib.crc32(captured[f]), len(captured[f])) for f in cached_firms]
        )
        keys_after = sum(len(v) for v in cache_keys(cache, world.portal_id).values())
        if keys_after != keys_before:
            raise BenchFailure(f"cached: {keys_after - keys_before} answers were computed anew")

        floor_paths = [FLOOR_PATH.format(firm_id=f) for f in cached_firms]
        floor = runner.run(
            "floor: the same gateway, precomputed bytes",
            floor_paths,
            args.floor,
            floor_paths,
            args.warmup,
        )
        floor_body = captured[floor_firm]
        verify_same_bytes(floor, [(zlib.crc32(floor_body), len(floor_body))])

        hops_paths = [HOPS_PATH.format(firm_id=f) for f in measured]
        hops = runner.run(
            "hops floor: gateway → registry → matching, no work",
            hops_paths,
            len(hops_paths),
            hops_paths[: len(open_firms)],
            len(open_firms),
        )
        verify_same_bytes(hops, [(zlib.crc32(floor_body), len(floor_body))])

        profile_lines: list[str] = []
        if args.profile is not None:
            # The cached path first (the gateway alone does the work), while answers are stored.
            with py_spy({"gateway": svc.pids["gateway"]}, args.profile / "cached") as files:
                hits = runner.run(
                    "cached, one at a time, under py-spy",
                    cached_paths,
                    PROFILE_REQUESTS * 3,
                    cached_paths,
                    len(cached_paths),
                    concurrency=1,
                )
            check_statuses(hits)
            profile_lines += [
                f"cached, one request at a time, {hits.requests:,} requests: gateway CPU "
                f"{hits.cpu_ms_per_request('gateway'):.2f} ms per request"
            ]
            profile_lines += summarize_profile("gateway (cached)", files["gateway"])
            # Every stored answer of the portal goes stale, as after a firm write.
            cache.incr(f"{CACHE_PREFIX}firms:generation:{world.portal_id}")
            profiled_pids = svc.pids
            # One request at a time: with the CPUs saturated, py-spy would also count the time
            # a process waits for a CPU (its samples are wall time of threads not asleep).
            profiled_firms = measured[:PROFILE_REQUESTS]
            with py_spy(profiled_pids, args.profile) as files:
                profiled = runner.run(
                    "uncached, one at a time, under py-spy",
                    [matches_path(f) for f in profiled_firms],
                    len(profiled_firms),
                    [matches_path(f) for f in open_firms],
                    len(open_firms),
                    concurrency=1,
                )
            check_statuses(profiled)
            cpu = "; ".join(
                f"{name} {profiled.cpu_ms_per_request(name):.2f} ms"
                for name in ("gateway", "matching", "registry", "load generator", "machine")
            )
            profile_lines += [
                f"uncached, one request at a time, {profiled.requests:,} requests: "
                f"p50 {profiled.pct(50):.2f} ms, p99 {profiled.pct(99):.2f} ms, "
                f"{profiled.rps:,.0f} req/s (slowed by sampling); raw profiles in {args.profile}",
                f"CPU per request: {cpu}",
            ]
            for name, raw in files.items():
                profile_lines += summarize_profile(name, raw)

        sizes = sorted(len(b) for b in captured.values())
        notes = [
            f"entries     {entries_note.removeprefix('firm entries: ')}",
            f"catalogue   {world.products:,} active products of one institution "
            f"({expect.catalogue_version}): bench.world.wide_catalogue, as bench/latency.py ranks",
            f"model       {model_note}",
            f"firms       {len(world.firm_ids):,} of one portal (seed_demo); uncached requests "
            f"go to {len(measured):,} firms once each; eligible products per firm: median "
            f"{np.median(eligible):.0f}, min {min(eligible)}, max {max(eligible)}",
            f"answers     limit 20, 10 near misses, zh; {sizes[0] / 1024:.1f}–"
            f"{sizes[-1] / 1024:.1f} KB (warm-up firms); floor body "
            f"{len(floor_body) / 1024:.1f} KB (firm {floor_firm})",
            (
                f"checked     each uncached request stored one new answer (a miss), ranked by "
                f"matching with {expected_model}, not degraded, bytes as stored; cached and "
                f"floor answers byte for byte the expected ones, no new answer computed"
            )
            if args.client != "wrk"
            else (
                f"checked     each uncached request stored one new answer (a miss), ranked by "
                f"matching with {expected_model}, not degraded; every answer 200 with the size "
                f"of its expected bytes (wrk sees sizes, not bytes); no new answer computed"
            ),
        ]
        info = machine_info(db_url, cache)
        client_note = {
            "wrk": "wrk, 1 thread (C: the servers' limit, not the client's)",
            "raw": "bench.api --loadgen, raw: asyncio + httptools (bench/api/rawhttp.py)",
            "python": "bench.api --loadgen, python: httpx (~1.3 ms CPU per request: often the "
            "limit)",
        }[args.client]
        info.append(("client", client_note))

    print_report(info, notes, [uncached, cached, floor, hops], args.concurrency, open_loop)
    if profile_lines:
        print("\nprofile of the uncached path")
        for line in profile_lines:
            print(f"  {line}")
    return 0
