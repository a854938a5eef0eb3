"""Benchmark webhook delivery: events committed at a constant rate, to a receiver that fails some.

    python -m bench.webhooks [--events 10000] [--rate 200] [--fail-share 0.2] [--dispatchers 1]
                             [--quick]

A producer writes events through the real code path (``services.registry.events.emit`` in a
writer's session, one event per transaction, committed) on a fixed schedule (open loop: event i
is due at start + i / rate whatever the dispatcher does) and notes each commit's time. The
real dispatcher process (``python -m services.registry.dispatcher``; ``--dispatchers N``
starts N of them, which share the outbox through their leases) sends them to a receiver
process (``bench.webhook_receiver``) that verifies every request with standardwebhooks, notes
its arrival, and answers 500 to the first attempt of a deterministic share of the webhook-ids.
The floor, in the same run: the same signed bodies POSTed by httpx straight to the receiver at
the same rate, with no database and no dispatcher.

Targets (issue 12), at 200 events/s: first-attempt p99 from commit to receipt ≤ 1 s; every
retried event delivered on its schedule; all delivered; no webhook-id received twice (there
is no crash in this run). It exits 1 only when the delivery came out wrong (an event not
delivered, a duplicate, a request that did not verify), not when a timing target is missed.

PostgreSQL from FINMATCH_BENCH_POSTGRES_URL (an admin URL: the bench creates and drops its own
database beside it); when that is unset, a temporary SQLite file, and the report says so.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.api.cpu import cpu_seconds, cpu_ticks
from bench.import_firms import create_database, database_url, drop_database, free_port
from bench.webhook_receiver import HOOK_PATH
from services.registry.config import RegistrySettings
from services.registry.db import make_engine, write_session
from services.registry.dispatcher.sender import make_client
from services.registry.dispatcher.signing import signed_headers
from services.registry.events import emit
from services.registry.migrate import upgrade
from services.registry.models import Principal, WebhookDelivery, WebhookEndpoint
from services.registry.models.columns import table_of
from shared.enums import PrincipalRole
from shared.schemas.webhooks import Event, EventType

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "finmatch_bench_webhooks"
TARGET_FIRST_P99_SECONDS = 1.0
READY_TIMEOUT_SECONDS = 30.0
WARMUP_TIMEOUT_SECONDS = 60.0
# After the last commit, how long the retries may take beyond their schedule before the run
# gives up waiting and counts what is missing as undelivered.
DRAIN_MARGIN_SECONDS = 30.0
WARMUP_SEQ = -1
FLOOR_PREFIX = "floor_"
EVENT_TYPE = EventType.APPLICATION_SUBMITTED
SHIPPED = RegistrySettings.model_fields
DELIVERY = table_of(WebhookDelivery)


class BenchFailure(Exception):
    """The setup broke (a process did not start, the warm-up event never arrived)."""


# --- options --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhooks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--events", type=int, help="events produced (10,000; --quick: 200)")
    parser.add_argument("--rate", type=float, help="events per second (200; --quick: 100)")
    parser.add_argument(
        "--fail-share",
        type=float,
        default=0.2,
        help="share of webhook-ids whose first attempt the receiver answers 500 (0.2)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 events at 100/s")
    parser.add_argument(
        "--floor-events", type=int, help="requests of the httpx floor (as many as --events)"
    )
    parser.add_argument(
        "--retry-schedule",
        default="[2, 4, 8]",
        help="the dispatcher's FINMATCH_WEBHOOK_RETRY_SCHEDULE_SECONDS for the run ([2, 4, 8])",
    )
    parser.add_argument("--jitter", type=float, default=0.1, help="retry jitter (0.1)")
    parser.add_argument(
        "--dispatchers",
        type=int,
        default=1,
        help="dispatcher processes sharing the outbox (1, as make run starts; more than one "
        "needs PostgreSQL)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        help=f"FINMATCH_DISPATCHER_POLL_SECONDS (unset: the shipped "
        f"{SHIPPED['dispatcher_poll_seconds'].default} s)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        help="seconds a retry may come after schedule × (1 + jitter) (the poll interval + 0.5)",
    )
    parser.add_argument(
        "--body-bytes",
        type=int,
        default=1_000,
        help="filler in each event's data, so that bodies weigh about a real event (1,000)",
    )
    parser.add_argument(
        "--database",
        default=DEFAULT_DATABASE,
        help=f"the PostgreSQL database created and dropped ({DEFAULT_DATABASE})",
    )
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    args.events = args.events if args.events is not None else (200 if args.quick else 10_000)
    args.rate = args.rate if args.rate is not None else (100.0 if args.quick else 200.0)
    args.floor_events = args.floor_events if args.floor_events is not None else args.events
    if args.events < 1 or args.floor_events < 0 or args.rate <= 0:
        parser.error("--events must be >= 1, --floor-events >= 0, --rate > 0")
    if not 0 <= args.fail_share < 1:
        parser.error("--fail-share must be in [0, 1)")
    if not 0 <= args.jitter < 1 or args.body_bytes < 0:
        parser.error("--jitter must be in [0, 1), --body-bytes >= 0")
    try:
        schedule = [float(s) for s in json.loads(args.retry_schedule)]
    except (ValueError, TypeError):
        parser.error("--retry-schedule must be a JSON list of seconds, e.g. [2, 4, 8]")
    if not schedule or min(schedule) <= 0:
        parser.error("--retry-schedule needs at least one delay, each > 0")
    args.schedule = schedule
    if args.dispatchers < 1:
        parser.error("--dispatchers must be >= 1")
    if args.dispatchers > 1 and not os.environ.get("FINMATCH_BENCH_POSTGRES_URL"):
        parser.error("--dispatchers > 1 needs PostgreSQL (FINMATCH_BENCH_POSTGRES_URL)")
    if args.poll_seconds is not None and args.poll_seconds <= 0:
        parser.error("--poll-seconds must be > 0")
    args.poll = (
        args.poll_seconds
        if args.poll_seconds is not None
        else float(SHIPPED["dispatcher_poll_seconds"].default)
    )
    if args.tolerance is None:
        args.tolerance = args.poll + 0.5
    return args


# --- the database ---------------------------------------------------------------------------


@dataclass
class Database:
    url: str
    label: str
    name: str | None  # the PostgreSQL database (its backends' CPU is counted), None on SQLite


@contextmanager
def database(args: argparse.Namespace, workdir: Path) -> Iterator[Database]:
    """A fresh, migrated database: our own on PostgreSQL, else a temporary SQLite file."""
    admin_url = os.environ.get("FINMATCH_BENCH_POSTGRES_URL", "")
    if not admin_url:
        url = f"sqlite:///{workdir / 'registry.db'}"
        upgrade(url)
        yield Database(
            url, "SQLite, a temporary file (FINMATCH_BENCH_POSTGRES_URL is not set)", None
        )
        return
    create_database(admin_url, args.database)
    try:
        url = database_url(admin_url, args.database)
        upgrade(url)
        with psycopg.connect(url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        version = str(row[0]) if row else "?"
        yield Database(url, f"PostgreSQL {version}, database {args.database}", args.database)
    finally:
        drop_database(admin_url, args.database)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def subscribe(engine: Engine, url: str, secret: str) -> int:
    """A portal principal with one enabled endpoint subscribed to the bench's event type; the
    principal's id (the events' audience)."""
    with write_session(engine) as session:
        owner = Principal(role=PrincipalRole.PORTAL.value, name="webhook bench")
        session.add(owner)
        session.flush()
        assert owner.id is not None
        session.add(
            WebhookEndpoint(
                owner_principal_id=owner.id,
                url=url,
                event_types=[EVENT_TYPE.value],
                description="bench receiver",
                secret=secret,
            )
        )
        session.commit()
        return owner.id


def payload(seq: int, body_bytes: int) -> dict[str, Any]:
    return {"seq": seq, "bench": "webhooks", "filler": "x" * body_bytes}


def pending_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(DELIVERY.c.status == "pending")
            ).scalar_one()
        )


def delivery_statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(DELIVERY.c.status, sa.func.count()).group_by(DELIVERY.c.status)
        ).all()
    return {str(status): int(count) for status, count in rows}


# --- the processes --------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def _env(extra: dict[str, str]) -> dict[str, str]:
    # The caller's dispatcher and webhook settings would change what is measured: the run
    # sets its own and leaves the rest at the shipped defaults.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FINMATCH_DISPATCHER_", "FINMATCH_WEBHOOK_"))
    }
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return env | {"PYTHONPATH": path} | extra


@contextmanager
def process(name: str, argv: list[str], env: dict[str, str], workdir: Path) -> Iterator[Process]:
    """A child process whose output goes to a log file; SIGTERM (then SIGKILL) at the end."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, *argv], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    proc = Process(name, popen, log)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: Process) -> int | None:
    if proc.popen.poll() is None:
        proc.popen.terminate()
        try:
            proc.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait(timeout=10)
    return proc.popen.returncode


def wait_ready(proc: Process, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise BenchFailure(f"{proc.name} exited at start:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise BenchFailure(f"{proc.name} not ready within {READY_TIMEOUT_SECONDS} s:\n{proc.tail()}")


def dispatcher_env(args: argparse.Namespace, db_url: str, metrics_port: int) -> dict[str, str]:
    settings = {
        "FINMATCH_DATABASE_URL": db_url,
        "FINMATCH_ENVIRONMENT": "bench",
        "FINMATCH_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver is on loopback
        "FINMATCH_WEBHOOK_RETRY_SCHEDULE_SECONDS": json.dumps(args.schedule),
        "FINMATCH_WEBHOOK_RETRY_JITTER": str(args.jitter),
        # Served once the process is up: the run waits for it before it starts the clock.
        "FINMATCH_DISPATCHER_METRICS_PORT": str(metrics_port),
        "FINMATCH_LOG_FORMAT": "text",
        "FINMATCH_LOG_LEVEL": "WARNING",  # a warning per retry: to the log file
    }
    if args.poll_seconds is not None:
        settings["FINMATCH_DISPATCHER_POLL_SECONDS"] = str(args.poll_seconds)
    return _env(settings)


def fetch_log(base_url: str) -> dict[str, list[Any]]:
    response = httpx.get(f"{base_url}/received", timeout=60.0)
    response.raise_for_status()
    log: dict[str, list[Any]] = response.json()
    return log


# --- the floor ------------------------------------------------------------------------------


@dataclass
class Floor:
    sent_at: dict[str, float]  # webhook-id → time.time() when its POST started
    lag: list[float]  # seconds each POST started after it was due
    errors: int
    cpu_seconds: float  # this process (the client)
    seconds: float


def floor_requests(n: int, secret: str, body_bytes: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """The same envelopes and signatures the dispatcher sends, prepared before the clock runs."""
    now = datetime.now(UTC)
    requests = []
    for seq in range(n):
        webhook_id = f"{FLOOR_PREFIX}{seq}"
        body = Event(type=EVENT_TYPE, timestamp=now, data=payload(seq, body_bytes))
        raw = body.model_dump_json().encode()
        headers = signed_headers(webhook_id, now, raw, [secret])
        headers["content-type"] = "application/json"
        requests.append((webhook_id, raw, headers))
    return requests


async def run_floor(
    url: str, requests: list[tuple[str, bytes, dict[str, str]]], rate: float
) -> Floor:
    """POST each request at its due time (open loop), on a client configured as the
    dispatcher's, without waiting for the earlier ones."""
    sent_at: dict[str, float] = {}
    lag: list[float] = []
    errors = 0
    client = make_client(3.0, 10.0)

    async def post(webhook_id: str, body: bytes, headers: dict[str, str]) -> None:
        nonlocal errors
        sent_at[webhook_id] = time.time()
        try:
            await client.post(url, content=body, headers=headers)
        except httpx.HTTPError:
            errors += 1

    cpu = time.process_time()
    start = time.monotonic() + 0.1
    tasks = []
    async with client:
        for i, (webhook_id, body, headers) in enumerate(requests):
            due = start + i / rate
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            lag.append(max(0.0, time.monotonic() - due))
            tasks.append(asyncio.create_task(post(webhook_id, body, headers)))
        await asyncio.gather(*tasks)
    seconds = time.monotonic() - start
    return Floor(sent_at, lag, errors, time.process_time() - cpu, seconds)


# --- the producer ---------------------------------------------------------------------------


@dataclass
class Production:
    committed_at: list[float]  # time.time() after each event's commit, by seq
    lag: list[float]  # seconds each transaction began after it was due
    seconds: float  # first due time to last commit
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return len(self.committed_at) / self.seconds if self.seconds > 0 else 0.0


def commit_event(engine: Engine, owner_id: int, seq: int, body_bytes: int) -> float:
    """One event in its own transaction, as an application write does; its commit time."""
    with write_session(engine) as session:
        emit(session, EVENT_TYPE, payload(seq, body_bytes), [owner_id])
        session.commit()
    return time.time()


def produce(engine: Engine, owner_id: int, n: int, rate: float, body_bytes: int) -> Production:
    """Event i is due at start + i / rate; a late one goes at once (the schedule never waits
    for the dispatcher, and never slows down to let the producer catch up)."""
    committed_at: list[float] = []
    lag: list[float] = []
    cpu = time.process_time()
    start = time.monotonic() + 0.1
    for seq in range(n):
        due = start + seq / rate
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        lag.append(max(0.0, time.monotonic() - due))
        committed_at.append(commit_event(engine, owner_id, seq, body_bytes))
    seconds = time.monotonic() - start
    return Production(committed_at, lag, seconds, time.process_time() - cpu)


def wait_received(base_url: str, seq: int, timeout: float) -> None:
    """Until the receiver has answered 2xx to a request carrying ``seq``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = fetch_log(base_url)
        if any(s == seq and 200 <= c < 300 for s, c in zip(log["seq"], log["status"], strict=True)):
            return
        time.sleep(0.1)
    raise BenchFailure(f"event {seq} not delivered within {timeout} s")


def drain(engine: Engine, dispatchers: Sequence[Process], timeout: float) -> None:
    """Wait until no delivery is pending (or ``timeout``, or a dispatcher is gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and all(d.popen.poll() is None for d in dispatchers):
        if pending_count(engine) == 0:
            return
        time.sleep(0.2)


# --- analysis -------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in [0, 1]); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50": pct(values, 0.5),
        "p99": pct(values, 0.99),
        "max": max(values) if values else math.nan,
    }


@dataclass
class Arrival:
    at: float
    status: int
    webhook_id: str


@dataclass
class Analysis:
    delivered: int = 0
    undelivered: list[int] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)  # webhook-id → 2xx receipts
    split_ids: int = 0  # events that arrived under more than one webhook-id
    first_attempt: list[float] = field(default_factory=list)  # commit → receipt, seconds
    retried_total: list[float] = field(default_factory=list)  # commit → 2xx receipt
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (scheduled base, measured)
    off_schedule: list[tuple[int, float, float]] = field(default_factory=list)  # seq, base, gap
    last_delivery: float = 0.0
    requests: int = 0  # the dispatcher's requests for the produced events


def arrivals_by_seq(log: dict[str, list[Any]]) -> dict[int, list[Arrival]]:
    """The dispatcher's requests (not the floor's, not the warm-up) of each event, in order."""
    by_seq: dict[int, list[Arrival]] = defaultdict(list)
    for webhook_id, seq, at, status in zip(
        log["webhook_id"], log["seq"], log["received_at"], log["status"], strict=True
    ):
        if seq is None or seq < 0 or webhook_id.startswith(FLOOR_PREFIX):
            continue
        by_seq[seq].append(Arrival(at, status, webhook_id))
    for arrivals in by_seq.values():
        arrivals.sort(key=lambda a: a.at)
    return by_seq


def analyse(
    log: dict[str, list[Any]],
    committed_at: Sequence[float],
    schedule: Sequence[float],
    jitter: float,
    tolerance: float,
) -> Analysis:
    result = Analysis()
    by_seq = arrivals_by_seq(log)
    ok_per_id: Counter[str] = Counter()
    for seq, committed in enumerate(committed_at):
        arrivals = by_seq.get(seq, [])
        ok = [a for a in arrivals if 200 <= a.status < 300]
        result.requests += len(arrivals)
        ok_per_id.update(a.webhook_id for a in ok)
        if len({a.webhook_id for a in arrivals}) > 1:
            result.split_ids += 1
        if not ok:
            result.undelivered.append(seq)
            continue
        result.delivered += 1
        result.last_delivery = max(result.last_delivery, ok[0].at)
        if arrivals[0] is ok[0]:
            result.first_attempt.append(ok[0].at - committed)
            continue
        result.retried_total.append(ok[0].at - committed)
        upto = arrivals.index(ok[0])
        for k in range(upto):  # the wait after the (k+1)-th failed attempt
            base = schedule[k] if k < len(schedule) else math.nan
            gap = arrivals[k + 1].at - arrivals[k].at
            result.gaps.append((base, gap))
            if not base * (1 - jitter) <= gap <= base * (1 + jitter) + tolerance:
                result.off_schedule.append((seq, base, gap))
    result.duplicates = {wid: n for wid, n in ok_per_id.items() if n > 1}
    return result


def floor_latencies(log: dict[str, list[Any]], floor: Floor) -> list[float]:
    """Send start → receipt of each floor request (its first arrival)."""
    seen: dict[str, float] = {}
    for webhook_id, at in zip(log["webhook_id"], log["received_at"], strict=True):
        if webhook_id in floor.sent_at and webhook_id not in seen:
            seen[webhook_id] = at - floor.sent_at[webhook_id]
    return list(seen.values())


# --- the run --------------------------------------------------------------------------------


@dataclass
class Cpu:
    seconds: dict[str, float]  # user + system, per process group
    wall: float


def measure_cpu(before: dict[str, Any], after: dict[str, Any], wall: float) -> Cpu:
    return Cpu({k: u + s for k, (u, s) in cpu_seconds(before, after).items()}, wall)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="finmatch-bench-webhooks-") as tmp:
        workdir = Path(tmp)
        with database(args, workdir) as db:
            print(f"database: {db.label}", flush=True)
            engine = make_engine(db.url)
            try:
                return run_on(args, db, engine, workdir)
            finally:
                engine.dispose()


def run_on(args: argparse.Namespace, db: Database, engine: Engine, workdir: Path) -> dict[str, Any]:
    secret = new_secret()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    receiver_argv = ["-m", "bench.webhook_receiver", "--port", str(port)]
    receiver_argv += ["--fail-share", str(args.fail_share), "--secret", secret]
    report: dict[str, Any] = {"database": db.label, "options": options_of(args)}
    with process("receiver", receiver_argv, _env({}), workdir) as receiver:
        wait_ready(receiver, f"{base_url}/healthz")
        owner_id = subscribe(engine, base_url + HOOK_PATH, secret)

        floor: Floor | None = None
        floor_cpu = Cpu({}, 0.0)
        if args.floor_events:
            requests = floor_requests(args.floor_events, secret, args.body_bytes)
            print(f"floor: {len(requests):,} httpx POSTs at {args.rate:g}/s …", flush=True)
            groups = {"receiver": [receiver.popen.pid], "PostgreSQL": []}
            before, started = cpu_ticks(groups), time.monotonic()
            floor = asyncio.run(run_floor(base_url + HOOK_PATH, requests, args.rate))
            floor_cpu = measure_cpu(before, cpu_ticks(groups), time.monotonic() - started)
            floor_cpu.seconds["client"] = floor.cpu_seconds

        argv = ["-m", "services.registry.dispatcher"]
        with ExitStack() as stack:
            dispatchers = []
            for n in range(1, args.dispatchers + 1):
                metrics_port = free_port()
                env = dispatcher_env(args, db.url, metrics_port)
                dispatcher = stack.enter_context(process(f"dispatcher-{n}", argv, env, workdir))
                wait_ready(dispatcher, f"http://127.0.0.1:{metrics_port}/metrics")
                dispatchers.append(dispatcher)
            # The warm-up event proves the dispatchers run and open their connections.
            commit_event(engine, owner_id, WARMUP_SEQ, args.body_bytes)
            wait_received(base_url, WARMUP_SEQ, WARMUP_TIMEOUT_SECONDS)
            groups = {
                "dispatcher": [d.popen.pid for d in dispatchers],
                "receiver": [receiver.popen.pid],
                "PostgreSQL": [],
            }
            before, started = cpu_ticks(groups, db.name), time.monotonic()
            print(
                f"dispatcher: {args.events:,} events at {args.rate:g}/s "
                f"({args.dispatchers} process{'es' if args.dispatchers > 1 else ''}) …",
                flush=True,
            )
            production = produce(engine, owner_id, args.events, args.rate, args.body_bytes)
            drain_timeout = sum(args.schedule) * (1 + args.jitter) + DRAIN_MARGIN_SECONDS
            drain(engine, dispatchers, drain_timeout)
            after = cpu_ticks(groups, db.name)
            cpu = measure_cpu(before, after, time.monotonic() - started)
            cpu.seconds["producer"] = production.cpu_seconds
            exit_codes = [stop(d) for d in dispatchers]
        log = fetch_log(base_url)
    analysis = analyse(log, production.committed_at, args.schedule, args.jitter, args.tolerance)
    report |= results(args, production, analysis, log, cpu, exit_codes)
    report["statuses"] = delivery_statuses(engine)
    if floor is not None:
        report["floor"] = floor_results(log, floor, floor_cpu)
    report["targets"] = targets(args, report)
    report["machine"] = machine()
    report["notes"] = warnings(report)
    return report


def options_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "events": args.events,
        "rate": args.rate,
        "fail_share": args.fail_share,
        "floor_events": args.floor_events,
        "retry_schedule_seconds": args.schedule,
        "jitter": args.jitter,
        "poll_seconds": args.poll,
        "poll_is_shipped_default": args.poll_seconds is None,
        "tolerance_seconds": args.tolerance,
        "body_bytes": args.body_bytes,
        "dispatchers": args.dispatchers,
        "dispatcher_concurrency": SHIPPED["dispatcher_concurrency"].default,
        "dispatcher_batch_size": SHIPPED["dispatcher_batch_size"].default,
    }


def results(
    args: argparse.Namespace,
    production: Production,
    analysis: Analysis,
    log: dict[str, list[Any]],
    cpu: Cpu,
    exit_codes: list[int | None],
) -> dict[str, Any]:
    span = analysis.last_delivery - production.committed_at[0]
    return {
        "produced": len(production.committed_at),
        "production_rate": production.rate,
        "producer_lag": summary(production.lag),
        "delivered": analysis.delivered,
        "delivered_per_second": analysis.delivered / span if span > 0 else math.nan,
        "delivery_span_seconds": span,
        "undelivered": len(analysis.undelivered),
        "undelivered_seqs": analysis.undelivered[:20],
        "duplicates": len(analysis.duplicates),
        "duplicate_ids": sorted(analysis.duplicates)[:20],
        "split_ids": analysis.split_ids,
        "verification_failures": sum(1 for v in log["verified"] if not v),
        "requests_received": analysis.requests,
        "first_attempt": summary(analysis.first_attempt),
        "retried": summary(analysis.retried_total),
        "retry_gaps": [
            {"scheduled": base, **summary([g for b, g in analysis.gaps if b == base])}
            for base in sorted({b for b, _g in analysis.gaps})
        ],
        "off_schedule": len(analysis.off_schedule),
        "off_schedule_examples": analysis.off_schedule[:10],
        "cpu_seconds": cpu.seconds,
        "cpu_wall_seconds": cpu.wall,
        # 0 when every dispatcher stopped gracefully on SIGTERM, else the first that did not.
        "dispatcher_exit_code": next((c for c in exit_codes if c != 0), 0),
        "dispatcher_exit_codes": exit_codes,
    }


def floor_results(log: dict[str, list[Any]], floor: Floor, cpu: Cpu) -> dict[str, Any]:
    latencies = floor_latencies(log, floor)
    return {
        "requests": len(floor.sent_at),
        "received": len(latencies),
        "errors": floor.errors,
        "rate": len(floor.sent_at) / floor.seconds if floor.seconds > 0 else math.nan,
        "lag": summary(floor.lag),
        "latency": summary(latencies),
        "cpu_seconds": cpu.seconds,
        "cpu_wall_seconds": cpu.wall,
    }


def targets(args: argparse.Namespace, report: dict[str, Any]) -> list[dict[str, Any]]:
    first_p99 = report["first_attempt"]["p99"]
    return [
        {
            "name": f"first-attempt p99 commit → receipt ≤ {TARGET_FIRST_P99_SECONDS:g} s",
            "value": f"{first_p99:.3f} s",
            "met": first_p99 <= TARGET_FIRST_P99_SECONDS,
        },
        {
            "name": "every retried event delivered on its schedule",
            "value": f"{report['off_schedule']} of {report['retried']['count']} off schedule",
            "met": report["off_schedule"] == 0 and report["undelivered"] == 0,
        },
        {
            "name": "all delivered",
            "value": f"{report['delivered']:,} of {report['produced']:,}",
            "met": report["undelivered"] == 0,
        },
        {
            "name": "no webhook-id received twice (no crash in this run)",
            "value": f"{report['duplicates']} duplicated",
            "met": report["duplicates"] == 0,
        },
        {
            "name": "every request verified",
            "value": f"{report['verification_failures']} failed",
            "met": report["verification_failures"] == 0,
        },
    ]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg": os.getloadavg(),
    }


# --- the report -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:,.0f}"


def processes(n: int) -> str:
    return "one process" if n == 1 else f"{n} processes (PostgreSQL leases share the work)"


def latency_row(name: str, stats: dict[str, float]) -> str:
    return (
        f"  {name:<44} {stats['count']:>7,} {ms(stats['p50']):>8} {ms(stats['p99']):>8} "
        f"{ms(stats['max']):>8}"
    )


def print_report(report: dict[str, Any]) -> None:
    opts = report["options"]
    poll = f"{opts['poll_seconds']:g} s" + (
        " (the shipped default)" if opts["poll_is_shipped_default"] else " (set for this run)"
    )
    print()
    print(f"database      {report['database']}")
    print(
        f"dispatcher    {processes(opts['dispatchers'])}; poll {poll}, "
        f"batch {opts['dispatcher_batch_size']}, "
        f"concurrency {opts['dispatcher_concurrency']}; retry schedule "
        f"{opts['retry_schedule_seconds']} s ± {opts['jitter']:.0%}"
    )
    print(
        f"receiver      own process (uvicorn); answers 500 to the first attempt of "
        f"{opts['fail_share']:.0%} of webhook-ids (by hash), else 204"
    )
    mach = report["machine"]
    load = " / ".join(f"{v:.2f}" for v in mach["load_avg"])
    print(f"machine       {mach['cpus']} CPUs, Python {mach['python']}, load avg {load}")
    print()
    print(
        f"produced      {report['produced']:,} events at {report['production_rate']:.1f}/s "
        f"(asked {opts['rate']:g}/s; start lag p99 {ms(report['producer_lag']['p99'])} ms)"
    )
    print(
        f"delivered     {report['delivered']:,} ({report['delivered_per_second']:.1f} events/s "
        f"over {report['delivery_span_seconds']:.1f} s, first commit to last delivery); "
        f"{report['requests_received']:,} requests"
    )
    print(
        f"undelivered   {report['undelivered']}; duplicates {report['duplicates']}; "
        f"verification failures {report['verification_failures']}; "
        f"events under two webhook-ids {report['split_ids']}"
    )
    print(f"deliveries    {report['statuses']} (in the database at the end)")
    print()
    print(f"  {'latency, ms':<44} {'count':>7} {'p50':>8} {'p99':>8} {'max':>8}")
    print(latency_row("first attempt: commit → receipt", report["first_attempt"]))
    print(latency_row("retried: commit → delivered receipt", report["retried"]))
    for gap in report["retry_gaps"]:
        print(latency_row(f"retried: failed → next attempt (plan {gap['scheduled']:g} s)", gap))
    floor = report.get("floor")
    if floor:
        print(latency_row("floor: httpx POST start → receipt", floor["latency"]))
        ratio = report["first_attempt"]["p99"] / floor["latency"]["p99"]
        print(
            f"  floor: {floor['requests']:,} POSTs at {floor['rate']:.1f}/s (start lag p99 "
            f"{ms(floor['lag']['p99'])} ms), {floor['received']:,} received, "
            f"{floor['errors']} errors; dispatcher first-attempt p99 ÷ floor p99: {ratio:.1f}×"
        )
    tol = opts["tolerance_seconds"]
    print(
        f"  on schedule: each wait within plan × (1 ± {opts['jitter']:g}) + {tol:g} s "
        f"(poll + 0.5 s unless --tolerance): {report['off_schedule']} off"
    )
    for seq, base, gap in report["off_schedule_examples"]:
        print(f"    event {seq}: plan {base:g} s, waited {gap:.3f} s")
    print()
    print_cpu(
        "dispatcher phase", report["cpu_seconds"], report["cpu_wall_seconds"], report["produced"]
    )
    if floor:
        print_cpu("floor phase", floor["cpu_seconds"], floor["cpu_wall_seconds"], floor["requests"])
    for note in report["notes"]:
        print(f"NOTE: {note}")
    print()
    print("targets")
    for target in report["targets"]:
        verdict = "PASS" if target["met"] else "FAIL"
        print(f"  {target['name']:<56} {target['value']:>22}  {verdict}")


def warnings(report: dict[str, Any]) -> list[str]:
    """What makes the figures not the ones the targets are about."""
    notes = []
    asked = report["options"]["rate"]
    if report["production_rate"] < 0.95 * asked:
        notes.append(
            f"the producer reached {report['production_rate']:.1f} of the {asked:g} events/s "
            "asked: the latencies are not those of the asked rate"
        )
    seconds, wall = report["cpu_seconds"], report["cpu_wall_seconds"]
    other = seconds.get("machine", 0.0) - sum(v for k, v in seconds.items() if k != "machine")
    if wall > 0 and other / wall > 0.25:
        notes.append(
            f"the machine spent {other / wall:.0%} of a CPU on work other than this bench's "
            "processes during the dispatcher phase (other jobs, or the kernel's networking)"
        )
    return notes


def print_cpu(name: str, seconds: dict[str, float], wall: float, events: int) -> None:
    print(f"CPU, {name} ({wall:.1f} s)")
    named = sum(spent for group, spent in seconds.items() if group != "machine")
    # What the machine was busy with beyond this bench's processes (other work, the kernel's
    # loopback networking): large means the figures were taken on a busy machine.
    rows = seconds | {"other": seconds.get("machine", 0.0) - named}
    for group, spent in rows.items():
        label = "machine (all CPUs, busy)" if group == "machine" else group
        share = spent / wall if wall > 0 else math.nan
        per_event = spent / events * 1000 if events else math.nan
        print(f"  {label:<26} {spent:8.2f} s  {share:6.0%} of a CPU  {per_event:6.2f} ms/event")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except BenchFailure as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    wrong = report["undelivered"] or report["duplicates"] or report["verification_failures"]
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
