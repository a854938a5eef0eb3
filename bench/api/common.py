"""What every part of the API bench agrees on: paths, names, targets, time limits."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
BENCH_DATABASE = "finmatch_bench_api"
CACHE_PREFIX = "finmatch-bench:"  # the gateway's Redis key prefix (FINMATCH_REDIS_PREFIX)
FLOOR_PATH = "/bench/floor/firms/{firm_id}/matches"
FLOOR_BODY_VARIABLE = "FINMATCH_BENCH_FLOOR_BODY"
# The hops floor: the uncached path's plumbing (gateway → registry → matching) with
# precomputed bytes at each end instead of a database read and a ranking.
HOPS_PATH = "/bench/hops/firms/{firm_id}/matches"
REGISTRY_FLOOR_PATH = "/bench/floor/firms/{firm_id}"
MATCHING_FLOOR_PATH = "/bench/floor/rank"
FIRM_BODY_VARIABLE = "FINMATCH_BENCH_FIRM_BODY"
INSTITUTION_NAME = "基准测试银行（演示）"

# Issue 14: (a) latency under load, open loop: at a constant 100 uncached requests/s, p99 from
# each request's due time; (b) capacity at 16 concurrent, and the machine's CPU per uncached
# match; (c) cached against the floor.
TARGET_OPEN_RATE = 100.0
TARGET_OPEN_P99_MS = 50.0
TARGET_UNCACHED_RPS = 250.0
TARGET_UNCACHED_CPU_MS = 7.0
TARGET_CACHED_FLOOR_RATIO = 3.0

READY_TIMEOUT_SECONDS = 60.0
TRAIN_TIMEOUT_SECONDS = 600.0
MODEL_SWITCH_TIMEOUT_SECONDS = 40.0
WAIT_FIRMS = 40  # warm-up firms spent waiting for the gateway to see the trained model
CAPTURE_FIRMS = 150  # warm-up firms whose answers pick the cached firms and the floor body
OPEN_FIRMS = 60  # warm-up firms the load generator uses to open its connections (uncached)
OPEN_CONNECTIONS = 16  # the open loop opens these before its phase (it may open more)
# The open-loop phase asks the closed-loop phase's firms again, with queries that phase did not
# ask: different cache keys, so every request misses, and the same ranking work (one language
# or one near miss more or less).
OPEN_QUERIES = ("?lang=en", "?lang=en&near_miss_limit=9", "?near_miss_limit=9")
PROFILE_REQUESTS = 1_000  # at most, in the --profile pass
WRK_SCRIPT = REPO_ROOT / "bench" / "wrk_paths.lua"


class BenchFailure(Exception):
    """A response was wrong (or the setup broke): the run must exit non-zero."""


def matches_path(firm_id: int) -> str:
    return f"/v1/firms/{firm_id}/matches"
