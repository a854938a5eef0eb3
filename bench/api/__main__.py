"""``python -m bench.api``: the options, then the run (or, with ``--loadgen``, a load generator)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import bench.api
from bench.api.common import (
    CAPTURE_FIRMS,
    DEFAULT_ADMIN_URL,
    DEFAULT_REDIS_URL,
    OPEN_FIRMS,
    OPEN_QUERIES,
    TARGET_OPEN_RATE,
    WAIT_FIRMS,
    BenchFailure,
)
from bench.api.loadgen import loadgen_main
from bench.api.measure import run


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=bench.api.__doc__)
    parser.add_argument("--products", type=int, default=1_000, help="active products (1,000)")
    parser.add_argument("--firms", type=int, default=5_000, help="firms of the portal (5,000)")
    parser.add_argument(
        "--applications", type=int, default=6_000, help="seeded application history (6,000)"
    )
    parser.add_argument(
        "--uncached", type=int, default=3_000, help="uncached requests, each a new firm (3,000)"
    )
    parser.add_argument(
        "--open-rate",
        type=float,
        default=TARGET_OPEN_RATE,
        help=f"open-loop phase: uncached requests due per second ({TARGET_OPEN_RATE:g})",
    )
    parser.add_argument(
        "--open-seconds", type=float, default=20.0, help="open-loop phase: its length (20 s)"
    )
    parser.add_argument("--cached", type=int, default=10_000, help="cached requests (10,000)")
    parser.add_argument("--floor", type=int, default=10_000, help="floor requests (10,000)")
    parser.add_argument("--cached-firms", type=int, default=8, help="firm URLs cycled (8)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent requests (16)")
    parser.add_argument(
        "--client",
        choices=("wrk", "raw", "python"),
        default="wrk" if shutil.which("wrk") else "raw",
        help="load generator: wrk (C, the default where installed: apt-get install wrk); raw "
        "(the default otherwise: asyncio and httptools, bench/api/rawhttp.py, a fraction of "
        "httpx's CPU); or python (httpx, ~1.3 ms of CPU per request). raw and python check "
        "every answer's bytes, wrk its status and size",
    )
    parser.add_argument(
        "--warmup", type=int, default=500, help="untimed requests before cached/floor (500)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="cap on each timed phase (120 s)"
    )
    parser.add_argument(
        "--prior", action="store_true", help="train no model: measure the rule-and-cost prior"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="after the measured phases, send cached requests (gateway) and then uncached ones "
        "(gateway, matching, registry) one at a time under py-spy; raw profiles go to DIR",
    )
    parser.add_argument(
        "--cprofile",
        type=Path,
        metavar="DIR",
        help="a profiling run: the services run under cProfile (CPU time, every thread); after "
        "the warm-up, only the uncached phase runs, and each service's profile of it goes to "
        "DIR/<service>.prof with a summary printed (no timed phases, no targets)",
    )
    parser.add_argument(
        "--no-firm-entries",
        action="store_true",
        help="the registry keeps no firm entries in Redis: every uncached match asks it for "
        "the firm (the path before the entries)",
    )
    args = parser.parse_args(argv)
    if min(args.products, args.uncached, args.cached, args.floor, args.cached_firms) < 1:
        parser.error("--products, --uncached, --cached, --floor and --cached-firms must be >= 1")
    if args.concurrency < 1 or args.warmup < 0 or args.max_seconds <= 0:
        parser.error("--concurrency must be >= 1, --warmup >= 0, --max-seconds > 0")
    warm = WAIT_FIRMS + CAPTURE_FIRMS + OPEN_FIRMS
    if args.firms < warm + args.uncached:
        parser.error(f"--firms must be at least {warm} (warm-up) + --uncached")
    if args.open_rate <= 0 or args.open_seconds <= 0:
        parser.error("--open-rate and --open-seconds must be > 0")
    if round(args.open_rate * args.open_seconds) > len(OPEN_QUERIES) * args.uncached:
        parser.error(
            f"the open loop asks each --uncached firm at most {len(OPEN_QUERIES)} times: "
            "--open-rate × --open-seconds must be at most that many"
        )
    if round(args.open_rate * args.open_seconds) < 2:
        parser.error("--open-rate × --open-seconds must be at least 2 requests")
    if args.cached_firms > CAPTURE_FIRMS:
        parser.error(f"--cached-firms must be at most {CAPTURE_FIRMS}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--loadgen"]:
        return loadgen_main(argv[1], argv[2])
    args = parse_args(argv)
    admin_url = os.environ.get("FINMATCH_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)
    redis_url = os.environ.get("FINMATCH_BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    try:
        return run(args, admin_url, redis_url)
    except BenchFailure as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
