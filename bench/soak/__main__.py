"""``python -m bench.soak``: the options, then the run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import bench.soak
from bench.api.common import BenchFailure
from bench.soak.run import run


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=bench.soak.__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length (10)")
    parser.add_argument(
        "--interval-seconds",
        type=float,
        default=60.0,
        help="one report row (and one RSS reading) per interval (60: per minute)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="requests per second; without it, 60%% of the capacity measured first (--load)",
    )
    parser.add_argument(
        "--load", type=float, default=0.6, help="share of the measured capacity sent (0.6)"
    )
    parser.add_argument(
        "--ramp-seconds", type=float, default=10.0, help="each step of the capacity ramp (10 s)"
    )
    parser.add_argument(
        "--ramp-max", type=int, default=64, help="the ramp's highest concurrency (64)"
    )
    parser.add_argument("--firms", type=int, default=2_000, help="seeded firms (2,000)")
    parser.add_argument(
        "--applications", type=int, default=3_000, help="seeded application history (3,000)"
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=2_000,
        help="requests waiting for an answer before new ones are dropped (counted as -1)",
    )
    parser.add_argument(
        "--backend",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="postgres: PostgreSQL and Redis (FINMATCH_BENCH_POSTGRES_URL, "
        "FINMATCH_BENCH_REDIS_URL); sqlite: a SQLite file and in-process caches (smoke runs)",
    )
    parser.add_argument(
        "--database",
        default="finmatch_bench_soak",
        help="the PostgreSQL database the run creates and drops (finmatch_bench_soak)",
    )
    parser.add_argument(
        "--redis-prefix",
        default="finmatch-bench-soak:",
        help="the gateway's Redis key prefix; its keys are deleted before and after",
    )
    parser.add_argument("--train", action="store_true", help="train a model first (else: prior)")
    parser.add_argument("--seed", type=int, default=1, help="the traffic's random seed (1)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.interval_seconds <= 0:
        parser.error("--minutes and --interval-seconds must be > 0")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be > 0")
    if not 0 < args.load <= 1 or args.ramp_seconds <= 0 or args.ramp_max < 1:
        parser.error("--load must be in (0, 1], --ramp-seconds > 0, --ramp-max >= 1")
    if args.firms < 10 or args.applications < 0 or args.max_in_flight < 1:
        parser.error("--firms must be >= 10, --applications >= 0, --max-in-flight >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except BenchFailure as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
