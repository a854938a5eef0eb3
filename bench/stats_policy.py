"""Coverage, the policy what-if and the reach preview at city scale (issue 14: ≤ 500 ms
uncached at 1,000,000 firms, memory bounded and stated).

Builds (or reuses) a database of firms only, starts the registry and the matching service, and
times the matching service's answers directly (uncached: nothing caches them; the service
keeps the firms as columns and reads the firms written since its last read before each one),
once right after each of a series of firm writes, and reports the matching process's RSS and
the columns' bytes per firm. The figures are checked against the rows: the firms considered
and the firms with a need, counted in SQL.

    python -m bench.stats --policy [--firms 1000000] [--repeat 15] [--keep] [--reuse]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import httpx
import psycopg

from bench.import_firms import create_database, database_url, drop_database, free_port
from bench.stats import TANGXIA, TOKEN, build, serve
from services.matching.firm_columns import FirmColumns
from shared.schemas.internal import FirmFeedPage

DATABASE = "finmatch_bench_policy"
TARGET_MS = 500.0


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _timed(call: Any, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = call()
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"{answer.request.url}: {answer.status_code} {answer.text[:300]}")
    return times


def run(args: argparse.Namespace, admin_url: str) -> int:
    url = database_url(admin_url, DATABASE)
    n = args.firms
    print(f"bench-stats --policy: {n:,} firms on PostgreSQL")
    if not args.reuse:
        create_database(admin_url, DATABASE)
        started = time.perf_counter()
        build(url, n, 0, 0)
        print(f"  built in {time.perf_counter() - started:.0f} s")
    registry_port, matching_port = free_port(), free_port()
    registry_env = {"FINMATCH_DATABASE_URL": url, "FINMATCH_REGISTRY_PORT": str(registry_port)}
    matching_env = {
        "FINMATCH_MATCHING_PORT": str(matching_port),
        "FINMATCH_REGISTRY_URL": f"http://127.0.0.1:{registry_port}",
        "FINMATCH_AUTO_RETRAIN": "false",
    }
    headers = {"X-Internal-Token": TOKEN}
    results: list[tuple[str, list[float]]] = []
    pids: dict[str, int] = {}
    try:
        with (
            serve("services.registry.cli", registry_port, registry_env) as registry,
            serve("services.matching.cli", matching_port, matching_env, pids) as matching,
            httpx.Client(base_url=matching, headers=headers, timeout=600) as client,
            httpx.Client(base_url=registry, headers=headers, timeout=60) as reg,
            psycopg.connect(url, autocommit=True) as conn,
        ):
            page = FirmFeedPage.model_validate_json(reg.get("/internal/feeds/firms").content)
            sample = FirmColumns.from_feed(page.columns)
            per_firm = sample.nbytes / sample.m
            catalogue = reg.get("/internal/catalogue").json()["products"]
            product = next(p for p in catalogue if p["category"] == "guanmaotong")
            started = time.perf_counter()
            first = client.get("/internal/policy/coverage")  # waits for the warm-up read
            first_s = time.perf_counter() - started
            assert first.status_code == 200, first.text
            rss, peak = _rss_mb(pids["services.matching.cli"])
            what_if = {"category": "guanmaotong", "criterion": "min_export_usd", "value": 0}
            town_what_if = what_if | {"town_code": TANGXIA}
            calls = [
                ("coverage, city", lambda: client.get("/internal/policy/coverage")),
                (
                    "coverage, one town",
                    lambda: client.get("/internal/policy/coverage", params={"town_code": TANGXIA}),
                ),
                ("what-if, city", lambda: client.post("/internal/policy/what-if", json=what_if)),
                (
                    "what-if, one town",
                    lambda: client.post("/internal/policy/what-if", json=town_what_if),
                ),
                (
                    "reach, city",
                    lambda: client.post("/internal/policy/reach", json={"product": product}),
                ),
                (
                    "reach, one town",
                    lambda: client.post(
                        "/internal/policy/reach", json={"product": product, "town_code": TANGXIA}
                    ),
                ),
            ]
            for name, call in calls:
                _timed(call, 1)
                results.append((name, _timed(call, args.repeat)))
            first_id = conn.execute("SELECT min(id) FROM firm").fetchone()[0]  # type: ignore[index]
            after = []
            for k in range(args.repeat):
                conn.execute(
                    "UPDATE firm SET employees = employees + 1, updated_at = now() WHERE id = %s",
                    (first_id + k,),
                )
                after += _timed(calls[0][1], 1)
            results.append(("coverage, city, after a write", after))
            # Exact against the rows: every firm considered, every firm with a need counted.
            considered = client.post("/internal/policy/what-if", json=what_if).json()
            rows = client.get("/internal/policy/coverage").json()["rows"]
            firms, with_need = conn.execute(
                "SELECT count(*), count(need_amount_yuan) FROM firm"
            ).fetchone()  # type: ignore[misc]
            shown = sum(r["firms_with_need"] or 0 for r in rows)
            withheld = sum(1 for r in rows if r["suppressed"])
            exact = considered["firms_considered"] == firms and (
                shown == with_need if not withheld else shown <= with_need
            )
            rss_after, peak_after = _rss_mb(pids["services.matching.cli"])
    finally:
        if not args.keep:
            drop_database(admin_url, DATABASE)
    print(f"\nfirst answer (waits for the start-up read of every firm): {first_s:.1f} s")
    print(f"columns: {per_firm:.0f} bytes per firm, {per_firm * n / 1e6:.0f} MB for {n:,} firms")
    print(f"matching RSS after the first answer: {rss:.0f} MB (peak {peak:.0f} MB)")
    print(f"matching RSS at the end: {rss_after:.0f} MB (peak {peak_after:.0f} MB)")
    print(f"exact against the rows (firms {firms:,}, with a need {with_need:,}): {exact}")
    print(f"machine load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print(f"\n{'query':<32} {'uncached p50':>13} {'max':>8}")
    ok = exact
    for name, times in results:
        p50 = statistics.median(times)
        met = p50 <= TARGET_MS
        ok &= met
        print(f"{name:<32} {p50:>10.1f} ms {max(times):>5.0f} ms {'' if met else 'NOT met'}")
    verdict = "met" if ok else "NOT met"
    print(f"\ntarget: ≤ {TARGET_MS:.0f} ms uncached (p50, one client): {verdict}")
    return 0
