"""Benchmark officials' statistics on PostgreSQL at city scale: uncached and cached.

Builds a database of 500,000 firms, 1,000,000 applications (with their snapshots, so rows are
as wide as real ones) and 600,000 match events, spread over two years, with COPY; then times
every /v1/stats/* answer (the overview, each breakdown, the league table, products, matched
without application, targets, firms):

- uncached: straight from the registry process over HTTP (the SQL aggregates, every time);
- cached: through a gateway process whose Redis cache already holds the answer;
- the baseline in the same run: the gateway's /healthz, i.e. the cost of an HTTP round trip
  with nothing behind it, so the cached figure can be read as a ratio;
- right after a write (a decision in the last full month, applied to the cube's cells by the
  query): the overview and the league table; then that month checked against its rebuild.

Targets (issue 14): ≤ 200 ms uncached, ≤ 10 ms cached, ≤ 250 ms uncached after a write.
Coverage's matched-without-application list is timed at the registry only: the gateway's
/v1/stats/coverage also asks the matching service, which this bench does not run.

    python -m bench.stats [--firms 500000] [--applications 1000000] [--repeat 15] [--keep]
    python -m bench.stats --policy [--firms 1000000]   # coverage, what-if, reach (stats_policy)

Needs FINMATCH_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test) and
FINMATCH_BENCH_REDIS_URL (default redis://127.0.0.1:6379/7).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psycopg
import redis
from sqlmodel import Session

from bench.import_firms import create_database, database_url, drop_database, free_port
from services.registry.db import make_engine
from services.registry.migrate import upgrade
from services.registry.models import Institution, Principal, Product
from services.registry.seed.catalogue import institutions, products
from shared.schemas.product import ProductCreate
from shared.vocab.towns import TOWNS, census_weights

REPO_ROOT = Path(__file__).resolve().parent.parent
DATABASE = "finmatch_bench_stats"
TOKEN = "bench-internal-token"
TANGXIA = "441900116"
TARGET_UNCACHED_MS = 200.0
TARGET_CACHED_MS = 10.0
TARGET_AFTER_WRITE_MS = 250.0
NOW = datetime(2026, 11, 1, tzinfo=UTC)
SECTIONS = list("ABCDEFGHIJKLMNOPQRST")
SECTION_WEIGHTS = np.array([2, 0.2, 45, 0.5, 3, 12] + [37.3 / 14] * 14)
SIZES = ["micro", "small", "medium", "large"]
FIRM_DEFAULTS: dict[str, Any] = {
    "export_revenue_usd": 0,
    "invention_patents": 1,
    "utility_patents": 2,
    "trademarks": 1,
    "is_high_tech": False,
    "is_specialized_sme": False,
    "gov_procurement_contracts_yuan": 0,
    "core_enterprise_receivables_yuan": 0,
    "is_green_listed": False,
    "collateral_real_estate_yuan": 0,
    "collateral_equipment_yuan": 0,
    "consent_matching": True,
    "version": 1,
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--firms", type=int, default=500_000)
    parser.add_argument("--applications", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per query")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept database")
    parser.add_argument(
        "--policy",
        action="store_true",
        help="coverage, what-if and reach on firms only (default 1,000,000): bench/stats_policy.py",
    )
    parser.add_argument(
        "--candidate",
        default=None,
        help="--policy: promote this train.candidates() model, not train's pick",
    )
    args = parser.parse_args(argv)
    if args.policy and "--firms" not in " ".join(argv or sys.argv):
        args.firms = 1_000_000
    return args


# --- the world ----------------------------------------------------------------------------


def _copy(conn: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Any) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)


def build(url: str, n_firms: int, n_apps: int, n_events: int) -> dict[str, int]:
    rng = np.random.default_rng(20201105)
    upgrade(url)
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        people = {
            "portal": Principal(role="portal", name="bench portal"),
            "city": Principal(role="official", name="bench city official"),
            "town": Principal(role="official", name="bench town official", town_code=TANGXIA),
        }
        session.add_all(people.values())
        inst_rows = [Institution(**spec) for spec in institutions()]
        session.add_all(inst_rows)
        session.flush()
        product_objs = []
        for inst_index, spec in products():
            values = ProductCreate.model_validate(spec).model_dump(mode="json")
            product_objs.append(Product(**values, institution_id=inst_rows[inst_index].id))
        session.add_all(product_objs)
        session.commit()
        ids = {name: int(p.id or 0) for name, p in people.items()}
        product_rows = [(p.id, p.institution_id, {"name": p.name}) for p in product_objs]
    engine.dispose()
    with psycopg.connect(url) as conn:
        portal = ids["portal"]

        print(f"  firms: {n_firms:,} …", flush=True)
        weights = census_weights()
        towns = [t.code for t in TOWNS]
        town_p = np.array([weights.get(t, 0.5) for t in towns])
        firm_town = rng.choice(len(towns), n_firms, p=town_p / town_p.sum())
        firm_section = rng.choice(len(SECTIONS), n_firms, p=SECTION_WEIGHTS / SECTION_WEIGHTS.sum())
        firm_size = rng.choice(4, n_firms, p=[0.62, 0.3, 0.07, 0.01])
        firm_need = rng.random(n_firms) < 0.7
        firm_created = NOW - timedelta(days=730) * rng.random(n_firms)
        firm_first = rng.random(n_firms) < 0.15

        def firms() -> Iterator[tuple[Any, ...]]:
            for i in range(n_firms):
                yield (
                    f"91441900B{i:08d}X"[:18],
                    portal,
                    f"东莞市基准{i}有限公司",
                    towns[firm_town[i]],
                    SECTIONS[firm_section[i]],
                    date(2010, 1, 1) + timedelta(days=int(i % 4000)),
                    int(5 + i % 200),
                    int(1_000_000 + (i * 7919) % 90_000_000),
                    int(1_000_000 + (i * 104729) % 60_000_000),
                    2_000_000 if firm_need[i] else None,
                    12 if firm_need[i] else None,
                    not firm_first[i],
                    SIZES[firm_size[i]],
                    "miit-2011",
                    firm_created[i],
                    firm_created[i],
                    *FIRM_DEFAULTS.values(),
                )

        _copy(
            conn,
            "firm",
            [
                "credit_code", "owner_principal_id", "name", "town_code", "industry_section",
                "established_on", "employees", "annual_revenue_yuan", "total_assets_yuan",
                "need_amount_yuan", "need_term_months", "has_borrowed_before", "size_class",
                "size_ruleset", "created_at", "updated_at", *FIRM_DEFAULTS,
            ],
            firms(),
        )  # fmt: skip
        conn.commit()
        first_firm = conn.execute("SELECT min(id) FROM firm").fetchone()[0]  # type: ignore[index]

        print(f"  applications: {n_apps:,} …", flush=True)
        app_firm = rng.integers(0, n_firms, n_apps)
        app_product = rng.integers(0, len(product_rows), n_apps)
        submitted = NOW - timedelta(days=730) * rng.random(n_apps)
        response_days = rng.gamma(2.0, 2.0, n_apps)
        status_roll = rng.random(n_apps)
        snapshot = orjson.dumps(
            {"name": "东莞市基准有限公司", "employees": 45, "annual_revenue_yuan": 18_000_000,
             "total_assets_yuan": 12_000_000, "export_revenue_usd": 0, "invention_patents": 2,
             "utility_patents": 5, "credit_rating": "A", "need_purpose": "采购原材料" * 4}
        ).decode()  # fmt: skip

        still_open: set[tuple[int, int]] = set()

        def applications() -> Iterator[tuple[Any, ...]]:
            for k in range(n_apps):
                i = int(app_firm[k])
                pid, inst, spec = product_rows[int(app_product[k])]
                roll = status_roll[k]
                status = (
                    "approved" if roll < 0.55 else "rejected" if roll < 0.85
                    else "withdrawn" if roll < 0.87 else "submitted"
                )  # fmt: skip
                if status == "submitted":  # one open application per firm and product
                    if (i, pid) in still_open:
                        status = "withdrawn"
                    still_open.add((i, pid))
                decided = status in ("approved", "rejected")
                at = submitted[k]
                approved = status == "approved"
                yield (
                    first_firm + i, pid, inst, portal, 2_000_000, 12, status, True, "2026-11-v1",
                    at, snapshot, orjson.dumps({"name": spec["name"]}).decode(),
                    towns[firm_town[i]], SECTIONS[firm_section[i]], SIZES[firm_size[i]],
                    bool(firm_first[i]), at,
                    at + timedelta(days=float(response_days[k])) if decided else None,
                    1_500_000 if approved else None, 380 if approved else None,
                    2 if decided else 1,
                )  # fmt: skip

        _copy(
            conn,
            "application",
            [
                "firm_id", "product_id", "institution_id", "owner_principal_id",
                "requested_amount_yuan", "requested_term_months", "status",
                "consent_share_profile", "consent_text_version", "consent_at", "firm_snapshot",
                "product_snapshot", "town_code", "industry_section", "size_class",
                "is_first_loan", "submitted_at", "decided_at", "approved_amount_yuan",
                "approved_rate_bp", "version",
            ],
            applications(),
        )  # fmt: skip
        conn.commit()

        print(f"  match events: {n_events:,} …", flush=True)
        event_firm = rng.integers(0, n_firms, n_events)
        event_product = rng.integers(0, len(product_rows), n_events)
        event_at = NOW - timedelta(days=730) * rng.random(n_events)
        _copy(
            conn,
            "match_event",
            ["firm_id", "product_id", "rank", "score", "eligible", "model_version", "degraded",
             "town_code", "created_at"],
            (
                (first_firm + int(event_firm[k]), product_rows[int(event_product[k])][0], 1, 0.5,
                 True, "bench", False, towns[firm_town[int(event_firm[k])]], event_at[k])
                for k in range(n_events)
            ),
        )  # fmt: skip
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        print("  VACUUM ANALYZE …", flush=True)
        conn.execute("VACUUM ANALYZE")
    return {"city": ids["city"], "town": ids["town"]}


def officials(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = dict(
            conn.execute(
                "SELECT name, id FROM principal WHERE name IN "
                "('bench city official', 'bench town official')"
            ).fetchall()
        )
    return {"city": rows["bench city official"], "town": rows["bench town official"]}


# --- the services ---------------------------------------------------------------------------


@contextmanager
def serve(
    module: str, port: int, env: dict[str, str], pids: dict[str, int] | None = None
) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    full = os.environ | env | {"FINMATCH_INTERNAL_TOKEN": TOKEN, "FINMATCH_LOG_LEVEL": "WARNING"}
    full["PYTHONPATH"] = str(REPO_ROOT)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "serve"], cwd=REPO_ROOT, env=full, stdout=log, stderr=log
        )
        if pids is not None:
            pids[module] = process.pid
        try:
            # The registry rebuilds a freshly loaded cube before it listens (minutes at scale).
            deadline = time.monotonic() + 900
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise SystemExit(f"{module} did not start:\n{log.read().decode()[-3000:]}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=20)


def timed(client: httpx.Client, path: str, repeat: int, **kwargs: Any) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(path, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")
    return times


def issue_key(url: str, principal_id: int) -> str:
    from services.registry.api.access import issue_key as issue

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            owner = session.get(Principal, principal_id)
            assert owner is not None
            key, _ = issue(session, owner, label="bench")
            session.commit()
            return key
    finally:
        engine.dispose()


# A decision on an open application, and its undo: a write that moves counts, amounts, firms,
# response times and the league table's day counts.
DECISIONS = (
    "UPDATE application SET status = 'approved', decided_at = submitted_at + interval '3 days',"
    " approved_amount_yuan = 1500000, approved_rate_bp = 380 WHERE id = %s",
    "UPDATE application SET status = 'submitted', decided_at = NULL,"
    " approved_amount_yuan = NULL, approved_rate_bp = NULL WHERE id = %s",
)


def cube_month(conn: psycopg.Connection[Any], month: str) -> dict[tuple[Any, ...], Any]:
    """The month's rows of both cube tables, comparable whatever their stored order."""
    from pyroaring import BitMap64

    out: dict[tuple[Any, ...], Any] = {}
    for table, pk in (
        ("stats_cube", 2),
        ("stats_cube_by", 4),
    ):
        cursor = conn.execute(f"SELECT * FROM {table} WHERE month = %s", (month,))
        names = [d.name for d in cursor.description or ()]
        for row in cursor:
            cell = dict(zip(names, row, strict=True))
            for name, value in cell.items():
                if name.endswith("_firms"):
                    cell[name] = tuple(BitMap64.deserialize(bytes(value)))
                elif name == "response_hours":
                    cell[name] = tuple(sorted(np.frombuffer(value, dtype="<f8").tolist()))
                elif name == "day_counts":
                    days = np.frombuffer(value, dtype="<i4").reshape(-1, 3).tolist()
                    cell[name] = tuple(sorted(map(tuple, days)))
            out[(table, *row[1 : 1 + pk])] = cell
    return out


def hot_month_exact(
    conn: psycopg.Connection[Any], reg: httpx.Client, headers: dict[str, str], month: str
) -> str:
    """The hot month as the logged writes left it, against the same month rebuilt from the
    rows (marked dirty, then rebuilt by the next query): equal cell by cell, or exit 1."""
    timed(reg, "/v1/stats/overview", 1, headers=headers)  # applies what is still logged
    patched = cube_month(conn, month)
    conn.execute("INSERT INTO stats_dirty (month, version) VALUES (%s, 1)", (month,))
    timed(reg, "/v1/stats/overview", 1, headers=headers)
    rebuilt = cube_month(conn, month)
    if patched != rebuilt:
        differ = [k for k in patched.keys() | rebuilt.keys() if patched.get(k) != rebuilt.get(k)]
        raise SystemExit(
            f"hot month {month}: {len(differ)} cells differ from a rebuild: {differ[:5]}"
        )
    return (
        f"hot month {month} after the writes: {len(patched):,} cells, "
        "identical to a rebuild from the rows"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    admin_url = os.environ.get(
        "FINMATCH_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    redis_url = os.environ.get("FINMATCH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    if args.policy:
        from bench.stats_policy import run

        return run(args, admin_url)
    url = database_url(admin_url, DATABASE)
    print(f"bench-stats: {args.firms:,} firms, {args.applications:,} applications on PostgreSQL")
    if args.reuse:
        who = officials(url)
    else:
        create_database(admin_url, DATABASE)
        started = time.perf_counter()
        who = build(url, args.firms, args.applications, args.events)
        print(f"  built in {time.perf_counter() - started:.0f} s")
    prefix = f"finmatch-bench-stats:{os.getpid()}:"
    registry_port, gateway_port = free_port(), free_port()
    registry_env = {
        "FINMATCH_DATABASE_URL": url,
        "FINMATCH_REGISTRY_PORT": str(registry_port),
    }
    gateway_env = {
        "FINMATCH_GATEWAY_PORT": str(gateway_port),
        "FINMATCH_REGISTRY_URL": f"http://127.0.0.1:{registry_port}",
        "FINMATCH_MATCHING_URL": "http://127.0.0.1:1",
        "FINMATCH_REDIS_URL": redis_url,
        "FINMATCH_REDIS_PREFIX": prefix,
        "FINMATCH_STATS_CACHE_SECONDS": "600",
        "FINMATCH_RATE_LIMIT_OFFICIAL": "1000000",
    }
    city_key = issue_key(url, who["city"])
    town_key = issue_key(url, who["town"])
    year = {"date_from": "2025-11-01", "date_to": "2026-11-01"}
    queries: list[tuple[str, str, dict[str, str], str, bool]] = [
        ("overview, city", "/v1/stats/overview", {}, "city", True),
        ("overview, one town", "/v1/stats/overview", {}, "town", True),
        ("overview, city, one year", "/v1/stats/overview", year, "city", True),
        *(
            (f"breakdown by {by}", "/v1/stats/breakdown", {"by": by}, "city", True)
            for by in ("town", "category", "month", "institution", "size_class", "industry")
        ),
        ("breakdown by industry, town", "/v1/stats/breakdown", {"by": "industry"}, "town", True),
        ("league table, city", "/v1/stats/institutions", {}, "city", True),
        ("league table, one town", "/v1/stats/institutions", {}, "town", True),
        ("league table, city, one year", "/v1/stats/institutions", year, "city", True),
        ("products, city", "/v1/stats/products", {}, "city", True),
        ("matched, no application", "/v1/stats/coverage/matched", {}, "city", False),
        ("targets, city", "/v1/stats/targets", {}, "city", True),
        ("firms, city", "/v1/stats/firms", {}, "city", True),
    ]
    results = []
    try:
        with (
            serve("services.registry.cli", registry_port, registry_env) as registry,
            serve("services.gateway.cli", gateway_port, gateway_env) as gateway,
            httpx.Client(base_url=registry, timeout=60) as reg,
            httpx.Client(base_url=gateway, timeout=60) as gw,
        ):
            city = {"X-Internal-Token": TOKEN, "X-Principal-Id": str(who["city"])}
            # The first query builds the statistics cube from scratch (every month is dirty
            # after the bulk load): the cost of a fresh database, or of a TRUNCATE.
            first = timed(reg, "/v1/stats/overview", 1, headers=city)[0]
            for name, path, params, role, through_gateway in queries:
                headers = {"X-Internal-Token": TOKEN, "X-Principal-Id": str(who[role])}
                timed(reg, path, 2, params=params, headers=headers)  # warm the buffer cache
                uncached = timed(reg, path, args.repeat, params=params, headers=headers)
                cached = []
                if through_gateway:
                    auth = {"Authorization": f"Bearer {city_key if role == 'city' else town_key}"}
                    timed(gw, path, 3, params=params, headers=auth)  # fills the cache
                    cached = timed(gw, path, args.repeat * 10, params=params, headers=auth)
                results.append((name, uncached, cached))
            # Uncached just after a write: a decision on an open application of the last full
            # month (~42,000 applications; the data's newest month holds only its first
            # hours), then its undo, in turn (each one logged by the triggers and applied to
            # its cells by the query); then the hot month checked against its rebuild.
            with psycopg.connect(url, autocommit=True) as conn:
                app_id, month = conn.execute(
                    "SELECT id, to_char(submitted_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') "
                    "FROM application WHERE status = 'submitted' AND submitted_at < %s "
                    "ORDER BY submitted_at DESC LIMIT 1",
                    (NOW - timedelta(days=7),),
                ).fetchone()  # type: ignore[misc]
                writes = 0
                for name, path in (
                    ("overview, city, after a write", "/v1/stats/overview"),
                    ("league, city, after a write", "/v1/stats/institutions"),
                ):
                    after_write = []
                    for _ in range(args.repeat):
                        conn.execute(DECISIONS[writes % 2], (app_id,))
                        writes += 1
                        after_write += timed(reg, path, 1, headers=city)
                    results.append((name, after_write, []))
                if writes % 2:
                    conn.execute(DECISIONS[1], (app_id,))
                exact = hot_month_exact(conn, reg, city, month)
            floor = timed(gw, "/healthz", args.repeat * 10)
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        if not args.keep:
            drop_database(admin_url, DATABASE)
    print(f"\nfirst query on the freshly loaded database (builds the cube): {first / 1000:.1f} s")
    print(exact)
    print(f"machine load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    return report(results, floor)


def report(results: list[tuple[str, list[float], list[float]]], floor: list[float]) -> int:
    floor_ms = statistics.median(floor)
    print()
    print(
        f"{'query':<30} {'uncached p50':>13} {'max':>8} {'cached p50':>11} {'p99':>7} {'÷floor':>7}"
    )
    ok = True
    for name, uncached, cached in results:
        u50, umax = statistics.median(uncached), max(uncached)
        target = TARGET_AFTER_WRITE_MS if "after a write" in name else TARGET_UNCACHED_MS
        met = u50 <= target
        ok &= met
        line = f"{name:<30} {u50:>10.1f} ms {umax:>5.0f} ms"
        if cached:
            c50, c99 = statistics.median(cached), float(np.percentile(cached, 99))
            met &= c50 <= TARGET_CACHED_MS
            ok &= met
            line += f" {c50:>8.2f} ms {c99:>4.1f} ms {c50 / floor_ms:>6.1f}×"
        print(f"{line:<80} {'' if met else 'NOT met'}")
    print(f"{'floor: gateway /healthz':<30} {'':>13} {'':>8} {floor_ms:>8.2f} ms")
    print()
    print(
        f"targets: uncached ≤ {TARGET_UNCACHED_MS:.0f} ms, cached ≤ {TARGET_CACHED_MS:.0f} ms, "
        f"after a write ≤ {TARGET_AFTER_WRITE_MS:.0f} ms (p50, one client): "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
