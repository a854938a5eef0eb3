"""Benchmark the NDJSON bulk firm import of the registry against a raw PostgreSQL COPY."""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import psycopg

from services.registry.bulk import WRITE_COLUMNS, parse_line
from services.registry.migrate import upgrade
from services.registry.models.columns import utcnow
from shared.vocab.credit_code import make_dongguan_credit_code

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_DATABASE = "finmatch_bench_import"
INTERNAL_TOKEN = "bench-internal-token"
BODY_CHUNK_BYTES = 64 * 1024
TARGET_ROWS_PER_SECOND = 20_000
TARGET_MAX_COPY_RATIO = 5.0
READY_TIMEOUT_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 1800.0
COPY_COLUMNS = ", ".join(WRITE_COLUMNS)


class BenchFailure(Exception):
    """The import was incorrect (or the setup broke): the run must exit non-zero."""


@dataclass
class Measurement:
    method: str
    rows: int
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.median


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--firms", type=int, default=100_000, help="firms to import (100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; median (3)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="batch_size query parameter (server default)"
    )
    args = parser.parse_args(argv)
    if args.firms < 1 or args.repeat < 1:
        parser.error("--firms and --repeat must be at least 1")
    return args


# --- database setup -------------------------------------------------------------------------


def database_url(admin_url: str, name: str) -> str:
    """The admin URL with its database name replaced by ``name``."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_portal_principal(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO principal (role, name, created_at) VALUES ('portal', 'bench portal', %s) "
            "RETURNING id",
            (utcnow(),),
        ).fetchone()
    assert row is not None
    return int(row[0])


def create_copy_table(url: str) -> None:
    """An empty twin of ``firm``: same columns, defaults, checks, indexes and owner foreign key."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE firm_copy (LIKE firm INCLUDING ALL)")
        # LIKE copies no foreign keys; the real table checks the owner on every row.
        conn.execute(
            "ALTER TABLE firm_copy ADD FOREIGN KEY (owner_principal_id) REFERENCES principal (id)"
        )


def reset_tables(url: str) -> None:
    # TRUNCATE, not DELETE: audit_log refuses DELETE by trigger.
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE firm, import_batch, audit_log, firm_copy CASCADE")


def count_rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


# --- input data -----------------------------------------------------------------------------


def firm_source(n: int) -> tuple[str, Iterator[dict[str, Any]]]:
    """The synthetic population generator if it imports, else a plain fallback."""
    try:
        from services.registry.seed.population import generate_firms
    except Exception as exc:  # the module is optional and may be mid-edit
        return f"bench fallback ({type(exc).__name__}: population generator unavailable)", (
            fallback_firm(i) for i in range(n)
        )
    return "services.registry.seed.population.generate_firms", generate_firms(n)


def fallback_firm(seq: int) -> dict[str, Any]:
    """A valid firm shaped like tests/registry/data.py's, varied a little per seq."""
    return {
        "credit_code": make_dongguan_credit_code(seq),
        "name": f"东莞市测试{seq}电子有限公司",
        "town_code": "441900116",
        "industry_section": "C",
        "industry_division": 39,
        "established_on": date(2015, 3, 1) - timedelta(days=seq % 5000),
        "employees": 5 + seq % 200,
        "annual_revenue_yuan": 1_000_000 + (seq % 997) * 50_000,
        "total_assets_yuan": 800_000 + (seq % 991) * 40_000,
        "export_revenue_usd": 0,
        "invention_patents": seq % 3,
        "utility_patents": seq % 7,
        "need_amount_yuan": 2_000_000,
        "need_term_months": 12,
        "need_purpose": "采购原材料",
    }


def ndjson_lines(firms: Iterator[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(firm) for firm in firms]


def body_chunks(lines: Sequence[bytes], chunk_bytes: int = BODY_CHUNK_BYTES) -> list[bytes]:
    """The NDJSON body cut into chunks of about ``chunk_bytes``, each ending on a newline."""
    chunks: list[bytes] = []
    pending: list[bytes] = []
    size = 0
    for line in lines:
        pending.append(line)
        size += len(line) + 1
        if size >= chunk_bytes:
            chunks.append(b"\n".join(pending) + b"\n")
            pending, size = [], 0
    if pending:
        chunks.append(b"\n".join(pending) + b"\n")
    return chunks


def copy_rows(lines: Sequence[bytes], principal_id: int) -> list[tuple[Any, ...]]:
    """The rows the endpoint would store, as tuples in WRITE_COLUMNS order."""
    now = utcnow()
    rows = []
    for line_no, raw in enumerate(lines, start=1):
        try:
            values = parse_line(raw)
        except ValueError as exc:
            errors = getattr(exc, "errors", exc)
            raise BenchFailure(f"generated line {line_no} is invalid: {errors}") from exc
        values |= {
            "owner_principal_id": principal_id,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        rows.append(tuple(values[column] for column in WRITE_COLUMNS))
    return rows


# --- the registry as a separate process -----------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def registry_server(db_url: str, pids: dict[str, int] | None = None) -> Iterator[str]:
    """Run the real registry under uvicorn; yield its base URL once /readyz answers (its
    process id in ``pids["registry"]``)."""
    with registry_process(db_url) as (base_url, process):
        if pids is not None:
            pids["registry"] = process.pid
        yield base_url


@contextmanager
def registry_process(db_url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As registry_server, with the process (for its CPU time)."""
    port = free_port()
    env = os.environ | {
        "FINMATCH_DATABASE_URL": db_url,
        "FINMATCH_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "FINMATCH_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    command = [
        sys.executable, "-m", "uvicorn", "services.registry.main:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_ready(base_url, process, log)
            yield base_url, process
        finally:
            stop_process(process)


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes], log: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise BenchFailure(f"registry exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise BenchFailure(f"registry not ready after {READY_TIMEOUT_SECONDS:.0f} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the two measured methods ---------------------------------------------------------------


def import_through_endpoint(
    client: httpx.Client,
    principal_id: int,
    chunks: Sequence[bytes],
    import_id: str,
    batch_size: int | None,
) -> tuple[float, dict[str, Any]]:
    """POST the streamed NDJSON body; return the seconds to the full response and its summary."""
    params: dict[str, Any] = {"import_id": import_id}
    if batch_size is not None:
        params["batch_size"] = batch_size
    headers = {
        "X-Internal-Token": INTERNAL_TOKEN,
        "X-Principal-Id": str(principal_id),
        "Content-Type": "application/x-ndjson",
    }
    started = time.perf_counter()
    response = client.post("/v1/firms/bulk", params=params, headers=headers, content=iter(chunks))
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise BenchFailure(f"bulk import answered {response.status_code}: {response.text[:2000]}")
    tail: dict[str, Any] = orjson.loads(response.content.rstrip(b"\n").rsplit(b"\n", 1)[-1])
    return seconds, tail


def import_problems(tail: dict[str, Any], expected_rows: int, stored_rows: int) -> list[str]:
    expected = {"lines": expected_rows, "created": expected_rows, "updated": 0, "invalid": 0}
    expected["not_written"] = 0
    problems = [
        f"summary {key} = {tail['summary'].get(key)}, expected {want}"
        for key, want in expected.items()
        if tail["summary"].get(key) != want
    ]
    problems += [
        f"{tail['batches'][key]} batches {key}"
        for key in ("rejected", "conflict")
        if tail["batches"].get(key)
    ]
    if stored_rows != expected_rows:
        problems.append(f"firm holds {stored_rows} rows, expected {expected_rows}")
    return problems


def copy_into_firm_copy(
    url: str, rows: Sequence[tuple[Any, ...]]
) -> tuple[float, tuple[float, float]]:
    """COPY the prepared rows into firm_copy; return the seconds of COPY plus commit only, and
    the CPU and run-queue wait seconds of its PostgreSQL backend meanwhile."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        backend = backend_pid(conn)
        cpu, wait = process_cpu_seconds(backend), runqueue_wait_seconds(backend)
        started = time.perf_counter()
        with cur.copy(f"COPY firm_copy ({COPY_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
        used = (process_cpu_seconds(backend) - cpu, runqueue_wait_seconds(backend) - wait)
        return seconds, used


# --- where the time goes: per-run diagnostics ------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Server-wide PostgreSQL counters (the server is shared: other databases' work shows in them).
PG_COUNTERS = (
    "SELECT checkpoints_timed + checkpoints_req, buffers_checkpoint, buffers_backend, "
    "buffers_backend_fsync, wal_bytes, wal_fpi FROM pg_stat_bgwriter, pg_stat_wal"
)
PG_COUNTER_NAMES = ("checkpoints", "buf_ckpt", "buf_backend", "backend_fsync", "wal", "wal_fpi")


def backend_pid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def runqueue_wait_seconds(pid: int) -> float:
    """Seconds the threads of a process have spent ready to run but waiting for a CPU (the
    scheduler's own count, /proc/PID/task/*/schedstat): time lost to other work on the
    machine, not to ours."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (the registry's bulk-validation workers), from
    /proc/PID/task/*/children."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as children:
                    queue += [int(child) for child in children.read().split()]
            except OSError:
                continue
    return found


def machine_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, over all cores."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    steal = values[7] if len(values) > 7 else 0
    return (sum(values[:8]) - idle - steal) / CLOCK_TICKS, steal / CLOCK_TICKS


def phase_sums(client: httpx.Client) -> dict[str, float]:
    """The registry's finmatch_bulk_import_phase_seconds sums of firm batches, by phase."""
    sums = {}
    prefix = 'finmatch_bulk_import_phase_seconds_sum{item="firm",phase="'
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            phase, value = line[len(prefix) :].split('"}')
            sums[phase] = float(value)
    return sums


@dataclass
class Snapshot:
    """What the machine, the registry and PostgreSQL have done so far."""

    wall: float
    load: float
    machine: tuple[float, float]
    registry: float
    registry_wait: float
    bench: float
    backends: dict[int, float]
    backends_wait: dict[int, float]
    pg: tuple[int, ...]
    phases: dict[str, float]


class Probe:
    """Snapshots before and after a run; the difference says where its time went."""

    def __init__(self, url: str, registry_pid: int, client: httpx.Client) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.own = backend_pid(self.conn)
        self.registry_pid = registry_pid
        self.client = client

    def close(self) -> None:
        self.conn.close()

    def snapshot(self, *, phases: bool) -> Snapshot:
        pids = [
            int(pid)
            for (pid,) in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchall()
        ]
        row = self.conn.execute(PG_COUNTERS).fetchone()
        assert row is not None
        registry_pids = process_tree(self.registry_pid)
        return Snapshot(
            wall=time.perf_counter(),
            load=os.getloadavg()[0],
            machine=machine_cpu(),
            # With its validation workers: their CPU is the registry's.
            registry=sum(process_cpu_seconds(pid) for pid in registry_pids),
            registry_wait=sum(runqueue_wait_seconds(pid) for pid in registry_pids),
            bench=process_cpu_seconds(os.getpid()),
            backends={pid: process_cpu_seconds(pid) for pid in pids},
            backends_wait={pid: runqueue_wait_seconds(pid) for pid in pids},
            pg=tuple(int(v) for v in row),
            phases=phase_sums(self.client) if phases else {},
        )


@dataclass
class RunFigures:
    label: str
    seconds: float
    load: tuple[float, float]
    registry_cpu: float
    registry_wait: float
    pg_cpu: float
    pg_wait: float
    bench_cpu: float
    others_cpu: float
    steal: float
    pg: dict[str, int]
    phases: dict[str, float]

    def line(self) -> str:
        pg = self.pg
        phases = " ".join(f"{k} {v:.2f}" for k, v in self.phases.items() if v >= 0.005)
        return (
            f"  {self.label:<14} {self.seconds:6.3f} s  "
            f"load {self.load[0]:5.2f}→{self.load[1]:5.2f}  "
            f"cpu: registry {self.registry_cpu:5.2f} (waited {self.registry_wait:4.2f}) "
            f"postgres {self.pg_cpu:5.2f} (waited {self.pg_wait:4.2f}) "
            f"bench {self.bench_cpu:4.2f} others {self.others_cpu:5.2f} steal {self.steal:4.2f} s"
            f"  ckpt {pg['checkpoints']} wal {pg['wal'] / 2**20:5.0f} MiB "
            f"fpi {pg['wal_fpi']:,} backend_fsync {pg['backend_fsync']}"
            + (f"\n{'':18}phases (s): {phases}" if phases else "")
        )


def figures(
    label: str,
    seconds: float,
    before: Snapshot,
    after: Snapshot,
    copy_backend: tuple[float, float] = (0.0, 0.0),
) -> RunFigures:
    """One run's figures; ``copy_backend``: (CPU, run-queue wait) of the COPY's backend, whose
    connection the snapshots do not see."""
    pg_cpu = copy_backend[0] + sum(
        cpu - before.backends.get(pid, 0.0) for pid, cpu in after.backends.items()
    )
    pg_wait = copy_backend[1] + sum(
        wait - before.backends_wait.get(pid, 0.0) for pid, wait in after.backends_wait.items()
    )
    registry = after.registry - before.registry
    busy = after.machine[0] - before.machine[0]
    bench = after.bench - before.bench  # this process: httpx streaming the body, or COPY
    return RunFigures(
        label=label,
        seconds=seconds,
        load=(before.load, after.load),
        registry_cpu=registry,
        registry_wait=after.registry_wait - before.registry_wait,
        pg_cpu=pg_cpu,
        pg_wait=pg_wait,
        bench_cpu=bench,
        others_cpu=busy - registry - pg_cpu - bench,
        steal=after.machine[1] - before.machine[1],
        pg={n: a - b for n, a, b in zip(PG_COUNTER_NAMES, after.pg, before.pg, strict=True)},
        phases={k: v - before.phases.get(k, 0.0) for k, v in after.phases.items()},
    )


# --- report ---------------------------------------------------------------------------------


def machine_info(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    cpus = f"{os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})"
    libraries = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("fastapi", "pydantic", "uvicorn", "psycopg", "httpx")
    )
    return [
        ("CPUs", cpus),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("platform", platform.platform()),
        ("PostgreSQL", str(row[0])),
        ("libraries", libraries),
        # Other work on the machine skews every number: show how busy it was.
        ("load avg", " / ".join(f"{load:.2f}" for load in os.getloadavg()) + " (1/5/15 min)"),
    ]


def print_report(
    info: list[tuple[str, str]], endpoint: Measurement, copy: Measurement, notes: list[str]
) -> None:
    print("\nmachine")
    for label, value in info:
        print(f"  {label:<11} {value}")
    for note in notes:
        print(f"  {note}")
    print(f"\n{'method':<26} {'rows':>9} {'seconds (median)':>17} {'rows/s':>10} {'× COPY':>8}")
    for measurement in (endpoint, copy):
        ratio = measurement.median / copy.median
        print(
            f"{measurement.method:<26} {measurement.rows:>9,} {measurement.median:>17.3f} "
            f"{measurement.rows_per_second:>10,.0f} {ratio:>8.1f}"
        )
    for measurement in (endpoint, copy):
        runs = ", ".join(f"{s:.3f}" for s in measurement.seconds)
        print(f"  runs of {measurement.method}: {runs} s")

    ratio = endpoint.median / copy.median
    targets = [
        (
            f"≥ {TARGET_ROWS_PER_SECOND:,} firms/s through the endpoint",
            f"{endpoint.rows_per_second:,.0f} firms/s",
            endpoint.rows_per_second >= TARGET_ROWS_PER_SECOND,
        ),
        (
            f"endpoint ≤ {TARGET_MAX_COPY_RATIO:g}× the raw COPY time",
            f"{ratio:.1f}×",
            ratio <= TARGET_MAX_COPY_RATIO,
        ),
    ]
    print("\ntargets")
    for target, actual, met in targets:
        print(f"  {target:<46} {actual:>16}  {'met' if met else 'NOT met'}")


# --- main -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, admin_url: str) -> int:
    url = database_url(admin_url, BENCH_DATABASE)
    create_database(admin_url, BENCH_DATABASE)
    try:
        upgrade(url)
        create_copy_table(url)
        principal_id = create_portal_principal(url)
        return prepare_and_measure(args, url, principal_id)
    finally:
        drop_database(admin_url, BENCH_DATABASE)


def prepare_and_measure(args: argparse.Namespace, url: str, principal_id: int) -> int:
    started = time.perf_counter()
    source, firms = firm_source(args.firms)
    lines = ndjson_lines(firms)
    chunks = body_chunks(lines)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    rows = copy_rows(lines, principal_id)
    parsed = time.perf_counter() - started
    body_mib = sum(len(c) for c in chunks) / 2**20
    notes = [
        f"firms from  {source}",
        f"prepared    {len(lines):,} lines, {body_mib:.1f} MiB in {len(chunks)} chunks, "
        f"{generated:.2f} s (not measured)",
        f"parse_line  {parsed:.2f} s here, {parsed / len(lines) * 1e6:.0f} µs/line "
        "(validation alone, in this process; not measured)",
    ]

    endpoint = Measurement("POST /v1/firms/bulk", args.firms)
    copy = Measurement("raw COPY into firm_copy", args.firms)
    batch_size = None
    runs: list[RunFigures] = []
    pids: dict[str, int] = {}
    with (
        registry_server(url, pids) as base_url,
        httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS) as client,
    ):
        client.get("/readyz")  # open the keep-alive connection before timing
        probe = Probe(url, pids["registry"], client)
        try:
            for run_no in range(args.repeat):
                reset_tables(url)
                before = probe.snapshot(phases=True)
                seconds, tail = import_through_endpoint(
                    client, principal_id, chunks, f"bench-{run_no}", args.batch_size
                )
                after = probe.snapshot(phases=True)
                problems = import_problems(tail, args.firms, count_rows(url, "firm"))
                if problems:
                    raise BenchFailure("endpoint import incorrect: " + "; ".join(problems))
                endpoint.seconds.append(seconds)
                runs.append(figures(f"{run_no + 1} endpoint", seconds, before, after))
                batch_size = tail.get("batch_size")
                print(
                    f"run {run_no + 1}/{args.repeat}: endpoint {seconds:.3f} s", end="", flush=True
                )

                reset_tables(url)
                before = probe.snapshot(phases=False)
                seconds, backend = copy_into_firm_copy(url, rows)
                after = probe.snapshot(phases=False)
                stored = count_rows(url, "firm_copy")
                if stored != args.firms:
                    raise BenchFailure(f"firm_copy holds {stored} rows, expected {args.firms}")
                copy.seconds.append(seconds)
                runs.append(figures(f"{run_no + 1} COPY", seconds, before, after, backend))
                print(f", COPY {seconds:.3f} s", flush=True)
        finally:
            probe.close()
    notes.append(f"batch_size  {batch_size} lines per transaction")
    print_report(machine_info(url), endpoint, copy, notes)
    print_runs(runs, endpoint, copy)
    return 0


def print_runs(runs: Sequence[RunFigures], endpoint: Measurement, copy: Measurement) -> None:
    """Each run with what the machine, the registry and PostgreSQL did meanwhile."""
    print(
        "\nper run (cpu: CPU seconds over both cores, and waited: seconds ready to run but "
        "waiting for a core; bench: this process, the client; others: the rest of the "
        "machine; ckpt/wal/fpi/backend_fsync: server-wide PostgreSQL counters)"
    )
    for run in runs:
        print(run.line())
    ratios = [e / c for e, c in zip(endpoint.seconds, copy.seconds, strict=True)]
    print("  endpoint ÷ COPY per run: " + ", ".join(f"{r:.1f}×" for r in ratios))
    # CPU seconds (registry, its backends and the client; the COPY's backend and the client)
    # do not wait for a core: the ratio other work on the machine moves least.
    cpu = [r.registry_cpu + r.pg_cpu + r.bench_cpu for r in runs]
    cpu_ratios = [e / c for e, c in zip(cpu[::2], cpu[1::2], strict=True) if c > 0]
    print("  endpoint ÷ COPY in CPU seconds per run: " + ", ".join(f"{r:.1f}×" for r in cpu_ratios))


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
