"""Benchmark an official register upload: 100,000 lines through the registry's endpoint.

Two uploads per run, on PostgreSQL, against the real registry process: a first replace of the
high-tech register (every line added), then a second replace of the same size that changes,
drops and adds 1% each (the diff path). Each is timed from the first byte sent to the answer,
which comes after the upload is published; the answer's summary and diff are checked. The CPU
seconds the registry process and its PostgreSQL backends spent on each upload are printed too:
on a machine shared with other work, wall time measures the machine's load as much as ours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
import psycopg

from bench.import_firms import (
    DEFAULT_ADMIN_URL,
    INTERNAL_TOKEN,
    REQUEST_TIMEOUT_SECONDS,
    BenchFailure,
    body_chunks,
    create_database,
    database_url,
    drop_database,
    machine_info,
    registry_process,
)
from services.registry.migrate import upgrade
from services.registry.models.columns import utcnow
from shared.vocab.credit_code import make_dongguan_credit_code

BENCH_DATABASE = "finmatch_bench_registers"
TARGET_SECONDS = 10.0
CHURN = 0.01  # the share of lines the second upload changes, drops and adds (each)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000, help="lines per upload (100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; median (3)")
    parser.add_argument("--csv", action="store_true", help="send CSV instead of NDJSON")
    parser.add_argument("--batch-size", type=int, default=None, help="batch_size (server's)")
    args = parser.parse_args(argv)
    if args.lines < 100 or args.repeat < 1:
        parser.error("--lines must be at least 100 and --repeat at least 1")
    return args


def certificate(seq: int, issued: date, suffix: str = "") -> dict[str, Any]:
    return {
        "credit_code": make_dongguan_credit_code(seq),
        "certificate_number": f"GR{issued.year}44{seq:07d}{suffix}",
        "valid_from": issued.isoformat(),
    }


def uploads(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """The first list, the second (1% changed, 1% dropped, 1% new) and the diff expected."""
    issued = date.today() - timedelta(days=400)
    first = [certificate(seq, issued) for seq in range(n)]
    churn = max(1, int(n * CHURN))
    second = [
        certificate(seq, issued, "R") if seq < churn else line
        for seq, line in enumerate(first)
        if not churn <= seq < 2 * churn  # dropped
    ] + [certificate(seq, issued) for seq in range(n, n + churn)]
    expected = {"added": churn, "removed": churn, "changed": churn, "unchanged": n - 2 * churn}
    return first, second, expected


def encode(lines: list[dict[str, Any]], csv: bool) -> list[bytes]:
    if not csv:
        return [orjson.dumps(line) for line in lines]
    header = b"credit_code,certificate_number,valid_from"
    rows = [
        f"{line['credit_code']},{line['certificate_number']},{line['valid_from']}".encode()
        for line in lines
    ]
    return [header, *rows]


def create_admin(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO principal (role, name, created_at) VALUES ('admin', 'bench', %s) "
            "RETURNING id",
            (utcnow(),),
        ).fetchone()
    assert row is not None
    return int(row[0])


def reset(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE register, register_entry, register_upload, import_batch CASCADE")


def send(
    client: httpx.Client,
    principal_id: int,
    chunks: list[bytes],
    upload_id: str,
    *,
    csv: bool,
    batch_size: int | None,
) -> tuple[float, dict[str, Any]]:
    params: dict[str, Any] = {"upload_id": upload_id}
    if batch_size is not None:
        params["batch_size"] = batch_size
    headers = {
        "X-Internal-Token": INTERNAL_TOKEN,
        "X-Principal-Id": str(principal_id),
        "Content-Type": "text/csv" if csv else "application/x-ndjson",
    }
    started = time.perf_counter()
    response = client.put(
        "/v1/registers/high_tech", params=params, headers=headers, content=iter(chunks)
    )
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise BenchFailure(f"upload answered {response.status_code}: {response.text[:2000]}")
    summary: dict[str, Any] = orjson.loads(response.content.rstrip(b"\n").rsplit(b"\n", 1)[-1])
    return seconds, summary


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving the bench database (the registry's pool, and ours)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def cpu_split(url: str, registry_pid: int) -> tuple[float, dict[int, float]]:
    return cpu_seconds(registry_pid), {pid: cpu_seconds(pid) for pid in backend_pids(url)}


def cpu_used(
    url: str, registry_pid: int, before: tuple[float, dict[int, float]]
) -> tuple[float, float]:
    """(registry, PostgreSQL) CPU seconds since ``before``."""
    registry, backends = cpu_split(url, registry_pid)
    database = sum(now - before[1].get(pid, 0.0) for pid, now in backends.items())
    return registry - before[0], database


def check(summary: dict[str, Any], lines: int, diff: dict[str, int]) -> None:
    upload = summary["upload"]
    problems = []
    if summary["summary"]["accepted"] != lines or summary["summary"]["invalid"]:
        problems.append(f"summary {summary['summary']}")
    if upload["status"] != "published" or upload["diff"] != diff:
        problems.append(f"upload {upload['status']}, diff {upload['diff']}, expected {diff}")
    if problems:
        raise BenchFailure("; ".join(problems))


def run(args: argparse.Namespace, admin_url: str) -> int:
    url = database_url(admin_url, BENCH_DATABASE)
    create_database(admin_url, BENCH_DATABASE)
    try:
        upgrade(url)
        principal_id = create_admin(url)
        first, second, expected = uploads(args.lines)
        bodies = [body_chunks(encode(lines, args.csv)) for lines in (first, second)]
        diffs = [
            {"added": len(first), "removed": 0, "changed": 0, "unchanged": 0},
            expected,
        ]
        names = ["first replace (all added)", "second replace (1% each way)"]
        timings: list[list[float]] = [[], []]
        cpu: list[list[tuple[float, float]]] = [[], []]
        with (
            registry_process(url) as (base_url, process),
            httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS) as client,
        ):
            client.get("/readyz")
            for run_no in range(args.repeat):
                reset(url)
                for step, (chunks, diff) in enumerate(zip(bodies, diffs, strict=True)):
                    before = cpu_split(url, process.pid)
                    seconds, summary = send(
                        client,
                        principal_id,
                        chunks,
                        f"bench-{run_no}-{step}",
                        csv=args.csv,
                        batch_size=args.batch_size,
                    )
                    cpu[step].append(cpu_used(url, process.pid, before))
                    check(summary, len(first) if step == 0 else len(second), diff)
                    timings[step].append(seconds)
                print(
                    f"run {run_no + 1}/{args.repeat}: "
                    + ", ".join(f"{t[-1]:.3f} s" for t in timings),
                    flush=True,
                )
        print("\nmachine")
        for label, value in machine_info(url):
            print(f"  {label:<11} {value}")
        body_format = "CSV" if args.csv else "NDJSON"
        print(f"  format      {body_format}, batch_size {summary['batch_size']}")
        print(f"\n{'upload':<30} {'lines':>9} {'seconds (median)':>17} {'lines/s':>10}")
        for name, seconds, lines, used in zip(names, timings, (first, second), cpu, strict=True):
            median = statistics.median(seconds)
            print(f"{name:<30} {len(lines):>9,} {median:>17.3f} {len(lines) / median:>10,.0f}")
            print(f"  runs: {', '.join(f'{s:.3f}' for s in seconds)} s")
            registry_cpu = statistics.median(r for r, _ in used)
            database_cpu = statistics.median(d for _, d in used)
            print(f"  CPU (median): registry {registry_cpu:.2f} s, PostgreSQL {database_cpu:.2f} s")
        worst = max(statistics.median(t) for t in timings)
        met = worst < TARGET_SECONDS
        print(
            f"\ntarget: {args.lines:,} lines in under {TARGET_SECONDS:g} s — slowest median "
            f"{worst:.3f} s: {'met' if met else 'NOT met'}"
        )
        return 0
    finally:
        drop_database(admin_url, BENCH_DATABASE)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    admin_url = os.environ.get("FINMATCH_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)
    try:
        return run(args, admin_url)
    except BenchFailure as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
