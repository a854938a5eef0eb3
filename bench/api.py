"""Benchmark GET /v1/firms/{id}/matches through the gateway: uncached, cached, and the floor.

Run from the repository root as a module (``python -m bench.api``). The same module also serves
two roles in child processes: the Python load generator (``--loadgen``) and the gateway app with
one extra route that answers precomputed bytes (``gateway_app``, the floor).

The load comes from wrk where it is installed (``apt-get install wrk``; bench/wrk_paths.lua
walks the URLs): a C client costs the machine ~0.1 ms of CPU per request, so the figures are
the servers'. ``--client python`` uses the httpx client instead (~1.3 ms per request, which
saturates a core at ~750 requests/s and hides the gateway's own cost on the cached path).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated, Any

import httpx
import numpy as np
import orjson
import psycopg
import redis
from fastapi import Path as PathParam
from fastapi import Request, Response

from bench.import_firms import create_database, database_url, drop_database, free_port
from services.gateway.auth import CurrentPrincipal

REPO_ROOT = Path(__file__).resolve().parent.parent
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

TARGET_UNCACHED_P99_MS = 50.0
TARGET_UNCACHED_RPS = 200.0
TARGET_CACHED_FLOOR_RATIO = 3.0

READY_TIMEOUT_SECONDS = 60.0
TRAIN_TIMEOUT_SECONDS = 600.0
MODEL_SWITCH_TIMEOUT_SECONDS = 40.0
WAIT_FIRMS = 40  # warm-up firms spent waiting for the gateway to see the trained model
CAPTURE_FIRMS = 150  # warm-up firms whose answers pick the cached firms and the floor body
OPEN_FIRMS = 60  # warm-up firms the load generator uses to open its connections (uncached)
PROFILE_REQUESTS = 1_000  # at most, in the --profile pass
WRK_SCRIPT = Path(__file__).with_name("wrk_paths.lua")


class BenchFailure(Exception):
    """A response was wrong (or the setup broke): the run must exit non-zero."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=1_000, help="active products (1,000)")
    parser.add_argument("--firms", type=int, default=5_000, help="firms of the portal (5,000)")
    parser.add_argument(
        "--applications", type=int, default=6_000, help="seeded application history (6,000)"
    )
    parser.add_argument(
        "--uncached", type=int, default=3_000, help="uncached requests, each a new firm (3,000)"
    )
    parser.add_argument("--cached", type=int, default=10_000, help="cached requests (10,000)")
    parser.add_argument("--floor", type=int, default=10_000, help="floor requests (10,000)")
    parser.add_argument("--cached-firms", type=int, default=8, help="firm URLs cycled (8)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent requests (16)")
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="load generator: wrk (C, the default where installed: apt-get install wrk) or "
        "this module's httpx client, which costs the machine ~1.3 ms of CPU per request but "
        "checks every answer's bytes (wrk checks statuses and sizes)",
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
    args = parser.parse_args(argv)
    if min(args.products, args.uncached, args.cached, args.floor, args.cached_firms) < 1:
        parser.error("--products, --uncached, --cached, --floor and --cached-firms must be >= 1")
    if args.concurrency < 1 or args.warmup < 0 or args.max_seconds <= 0:
        parser.error("--concurrency must be >= 1, --warmup >= 0, --max-seconds > 0")
    warm = WAIT_FIRMS + CAPTURE_FIRMS + OPEN_FIRMS
    if args.firms < warm + args.uncached:
        parser.error(f"--firms must be at least {warm} (warm-up) + --uncached")
    if args.cached_firms > CAPTURE_FIRMS:
        parser.error(f"--cached-firms must be at most {CAPTURE_FIRMS}")
    return args


# --- the world: database, catalogue, firms --------------------------------------------------


@dataclass
class World:
    db_url: str
    portal_id: int
    portal_key: str
    firm_ids: list[int]
    products: int
    decided: int


def build_world(db_url: str, n_firms: int, n_applications: int, n_products: int) -> World:
    """The demo world (portal, key, firms, history) plus one institution with the catalogue.

    The seed's 48 products are deactivated after the history is written, so the active
    catalogue is exactly the bench institution's ``n_products``: world.wide_catalogue(n), the
    48 seed products and perturbed copies, the catalogue bench/latency.py ranks in-process.
    """
    from sqlmodel import Session

    from bench.world import wide_catalogue
    from services.registry.db import make_engine
    from services.registry.migrate import upgrade
    from services.registry.models import Institution, Product, ProductCreate
    from services.registry.seed.loader import DEMO_PORTAL, seed_demo
    from shared.vocab.categories import CATEGORIES, InstitutionKind

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        seeded = seed_demo(engine, n_firms=n_firms, n_applications=n_applications, progress=False)
        with Session(engine) as session:
            institution = Institution(name=INSTITUTION_NAME, kind=InstitutionKind.BANK.value)
            session.add(institution)
            session.flush()
            assert institution.id is not None
            rows = []
            for number, features in enumerate(wide_catalogue(n_products), start=1):
                spec = features.model_dump(mode="json", exclude={"id", "institution_id", "name"})
                name = f"{CATEGORIES[features.category].name_zh}·基准{number:04d}"
                create = ProductCreate.model_validate(spec | {"name": name})
                rows.append(
                    Product(**create.model_dump(mode="json"), institution_id=institution.id)
                )
            session.add_all(rows)
            session.commit()
            bench_institution = institution.id
    finally:
        engine.dispose()

    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE product SET active = false, version = version + 1, updated_at = now() "
            "WHERE institution_id <> %s",
            (bench_institution,),
        )
        portal = conn.execute("SELECT id FROM principal WHERE name = %s", (DEMO_PORTAL,)).fetchone()
        assert portal is not None
        firm_ids = [
            int(r[0])
            for r in conn.execute(
                "SELECT id FROM firm WHERE owner_principal_id = %s ORDER BY id", (portal[0],)
            )
        ]
        active = conn.execute("SELECT count(*) FROM product WHERE active").fetchone()
        decided = conn.execute("SELECT count(*) FROM decision").fetchone()
    assert active is not None
    assert decided is not None
    if int(active[0]) != n_products:
        raise BenchFailure(f"{active[0]} active products, expected {n_products}")
    return World(
        db_url, int(portal[0]), seeded.keys["portal"], firm_ids, int(active[0]), int(decided[0])
    )


# --- the three services as real processes ---------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Any


def start_server(name: str, app: str, env: dict[str, str]) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", app, "--factory", "--workers", "1",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop_server)
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchFailure(f"{name} exited with {process.returncode}:\n{server_output(server)}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise BenchFailure(f"{name} not ready after {READY_TIMEOUT_SECONDS:.0f} s")


def server_output(server: Server) -> str:
    server.log.seek(0)
    text: str = server.log.read().decode(errors="replace")
    return text[-4000:]


def stop_server(server: Server) -> None:
    process = server.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    server.log.close()


@dataclass
class Services:
    registry: Server
    matching: Server
    gateway: Server
    admin_key: str
    internal_token: str

    @property
    def pids(self) -> dict[str, int]:
        return {s.name: s.process.pid for s in (self.gateway, self.matching, self.registry)}


@contextmanager
def services(db_url: str, redis_url: str, floor_body: Path, firm_body: Path) -> Iterator[Services]:
    admin_key = secrets.token_urlsafe(32)
    internal_token = secrets.token_urlsafe(32)
    env = os.environ | {
        "FINMATCH_INTERNAL_TOKEN": internal_token,
        "FINMATCH_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    with ExitStack() as stack:
        registry_env = env | {"FINMATCH_DATABASE_URL": db_url, FIRM_BODY_VARIABLE: str(firm_body)}
        registry = start_server("registry", "bench.api:registry_app", registry_env)
        stack.callback(stop_server, registry)
        matching_env = env | {
            "FINMATCH_REGISTRY_URL": registry.url,
            "FINMATCH_REDIS_URL": redis_url,
            "FINMATCH_MODEL_SIGNING_KEY": secrets.token_urlsafe(32),
            "FINMATCH_AUTO_RETRAIN": "false",  # no retraining in the middle of a phase
            FLOOR_BODY_VARIABLE: str(floor_body),
        }
        matching = start_server("matching", "bench.api:matching_app", matching_env)
        stack.callback(stop_server, matching)
        gateway_env = env | {
            "FINMATCH_REGISTRY_URL": registry.url,
            "FINMATCH_MATCHING_URL": matching.url,
            "FINMATCH_REDIS_URL": redis_url,
            "FINMATCH_REDIS_PREFIX": CACHE_PREFIX,
            "FINMATCH_BOOTSTRAP_ADMIN_KEY": admin_key,
            # The limiter still counts every request in Redis; it just never refuses one.
            "FINMATCH_RATE_LIMIT_PORTAL": "100000000",
            FLOOR_BODY_VARIABLE: str(floor_body),
        }
        gateway = start_server("gateway", "bench.api:gateway_app", gateway_env)
        stack.callback(stop_server, gateway)
        try:
            yield Services(registry, matching, gateway, admin_key, internal_token)
        except BenchFailure:
            for server in (registry, matching, gateway):
                output = server_output(server).strip()
                if output:
                    print(f"--- {server.name} output (tail)\n{output}", file=sys.stderr)
            raise


FirmId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


async def floor_answer(firm_id: FirmId, request: Request) -> Response:
    """The floor: the bytes of a real match answer, read once from the captured file."""
    state = request.app.state
    body: bytes | None = getattr(state, "bench_floor_body", None)
    if body is None:
        body = state.bench_floor_body = Path(os.environ[FLOOR_BODY_VARIABLE]).read_bytes()
    return Response(body, media_type="application/json")


def _file_bytes(request: Request, variable: str) -> bytes:
    """The bytes of the file an environment variable names, read once per process."""
    held: dict[str, bytes] = request.app.state.__dict__.setdefault("bench_files", {})
    body = held.get(variable)
    if body is None:
        body = held[variable] = Path(os.environ[variable]).read_bytes()
    return body


def gateway_app() -> Any:
    """The real gateway app (services.gateway.main.create_app) plus the two floor routes.

    They are added after every gateway route, so they run through the same uvicorn process,
    middleware, exception handlers and router. The floor answers the bytes of a real match
    answer that the bench captured into the file named by FINMATCH_BENCH_FLOOR_BODY. The hops
    floor makes the uncached path's calls (key and rate limit, the answer's cache lookup, the
    firm from the registry, the ranking from matching) to routes that answer precomputed bytes.
    """
    from services.gateway.catalogue import GENERATION_KEY
    from services.gateway.main import create_app

    async def hops_answer(
        firm_id: FirmId, request: Request, principal: CurrentPrincipal
    ) -> Response:
        state = request.app.state
        await state.cache.get_many(
            f"firms:generation:{principal.id}", GENERATION_KEY, f"bench:hops:{firm_id}"
        )
        firm = await state.registry.request(
            "GET", REGISTRY_FLOOR_PATH.format(firm_id=firm_id), principal_id=principal.id
        )
        ranking = await state.matching.request(
            "POST",
            MATCHING_FLOOR_PATH,
            content=b'{"firm":' + firm.content + b',"catalogue_version":"bench"}',
            headers={"Content-Type": "application/json"},
            idempotent=True,
        )
        return Response(ranking.content, media_type="application/json")

    app = create_app()
    app.add_api_route(FLOOR_PATH, floor_answer, methods=["GET"], include_in_schema=False)
    app.add_api_route(HOPS_PATH, hops_answer, methods=["GET"], include_in_schema=False)
    return app


def _with_floor_route(app: Any, path: str, method: str, endpoint: Any, *guards: Any) -> Any:
    """``app`` with one bench route, behind the service's own guards, after all its routes."""
    from fastapi import Depends

    app.add_api_route(
        path,
        endpoint,
        methods=[method],
        dependencies=[Depends(guard) for guard in guards],
        include_in_schema=False,
    )
    return app


def registry_app() -> Any:
    """The real registry app plus the hops floor's firm: precomputed bytes, no database."""
    from services.registry.api.deps import get_principal, require_internal_token
    from services.registry.main import create_app

    async def firm_floor(firm_id: FirmId, request: Request) -> Response:
        return Response(_file_bytes(request, FIRM_BODY_VARIABLE), media_type="application/json")

    return _with_floor_route(
        create_app(), REGISTRY_FLOOR_PATH, "GET", firm_floor, require_internal_token, get_principal
    )


def matching_app() -> Any:
    """The real matching app plus the hops floor's ranking: reads the body, answers the bytes
    of a real match answer, ranks nothing."""
    from services.matching.main import create_app
    from shared.internal import require_internal_token

    async def rank_floor(request: Request) -> Response:
        await request.body()
        return Response(_file_bytes(request, FLOOR_BODY_VARIABLE), media_type="application/json")

    return _with_floor_route(
        create_app(), MATCHING_FLOOR_PATH, "POST", rank_floor, require_internal_token
    )


def train_model(gateway_url: str, admin_key: str) -> dict[str, Any]:
    response = httpx.post(
        f"{gateway_url}/v1/admin/models/train",
        json={"auto_promote": True},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=TRAIN_TIMEOUT_SECONDS,
    )
    if response.status_code != 200:
        raise BenchFailure(f"training answered {response.status_code}: {response.text[:2000]}")
    outcome: dict[str, Any] = response.json()
    if not outcome.get("promoted"):
        raise BenchFailure(f"the trained model was not promoted: {outcome.get('reason')}")
    return outcome


# --- the load generator (a child process) ---------------------------------------------------


def database_backends(database: str) -> list[int]:
    """PostgreSQL backends serving ``database`` (their process title names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
            pids.append(int(entry.name))
    return pids


def cpu_ticks(
    groups: dict[str, list[int]], database: str | None = None
) -> dict[str, dict[int, tuple[int, int]]]:
    """(user, system) clock ticks of each process of each group; ``machine`` is the whole
    machine's busy time over all CPUs (pid 0). The backends serving ``database`` are added to
    the PostgreSQL group as they are found: the registry's pool opens some during a phase."""
    if database is not None:
        groups = groups | {"PostgreSQL": groups["PostgreSQL"] + database_backends(database)}
    ticks: dict[str, dict[int, tuple[int, int]]] = {}
    for name, pids in groups.items():
        ticks[name] = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended (a pooled database connection closed)
                continue
            ticks[name][pid] = (int(fields[11]), int(fields[12]))
    cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user + nice; system + irq + softirq + steal (idle and iowait are not busy)
    ticks["machine"] = {0: (cpu[0] + cpu[1], cpu[2] + cpu[5] + cpu[6] + cpu[7])}
    return ticks


def cpu_seconds(
    before: dict[str, dict[int, tuple[int, int]]], after: dict[str, dict[int, tuple[int, int]]]
) -> dict[str, tuple[float, float]]:
    """(user, system) seconds of each group between two readings. A process that started in
    between counts whole; one that ended in between is lost (a closed pooled connection)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, start in before.items():
        end = after[name]
        user = sum(u - start.get(p, (0, 0))[0] for p, (u, _s) in end.items()) / tick
        system = sum(s - start.get(p, (0, 0))[1] for p, (_u, s) in end.items()) / tick
        out[name] = (user, system)
    return out


async def drive(
    client: httpx.AsyncClient,
    paths: Sequence[str],
    n: int,
    concurrency: int,
    deadline: float | None,
) -> list[tuple[int, int, int, int]]:
    """``n`` GETs of paths[i % len(paths)] by ``concurrency`` workers, or fewer at the deadline.

    One (nanoseconds, status, crc32 of the body, body length) per completed request, in order
    of sending. Requests are taken in order, so the completed ones are always the first ones.
    """
    out: list[tuple[int, int, int, int] | None] = [None] * n
    taken = itertools.count()
    clock = time.perf_counter_ns

    async def worker() -> None:
        while True:
            i = next(taken)
            if i >= n or (deadline is not None and time.perf_counter() > deadline):
                return
            started = clock()
            try:
                response = await client.get(paths[i % len(paths)])
                body, status = response.content, response.status_code
            except httpx.HTTPError:
                body, status = b"", 0
            out[i] = (clock() - started, status, zlib.crc32(body), len(body))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = [r for r in out if r is not None]
    if any(r is None for r in out[: len(done)]):
        raise RuntimeError("completed requests are not a prefix")  # cannot happen
    return done


async def load(spec: dict[str, Any]) -> dict[str, Any]:
    concurrency = spec["concurrency"]
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=60
    )
    async with httpx.AsyncClient(
        base_url=spec["base_url"], headers=spec["headers"], limits=limits, timeout=30.0
    ) as client:
        warm = spec["warmup_paths"]
        await drive(client, warm, spec["warmup"], concurrency, None)
        groups = spec["pids"] | {"load generator": [os.getpid()]}
        before = cpu_ticks(groups, spec["database"])
        started = time.perf_counter()
        results = await drive(
            client, spec["paths"], spec["requests"], concurrency, started + spec["max_seconds"]
        )
        seconds = time.perf_counter() - started
        after = cpu_ticks(groups, spec["database"])
    alive = {name: len(before[name].keys() | after[name].keys()) for name in before}
    return {
        "results": results,
        "seconds": seconds,
        "cpu": cpu_seconds(before, after),
        "processes": alive,
    }


def loadgen_main(spec_file: str, out_file: str) -> int:
    # httpcore asks sniffio which event loop runs, several times per request; sniffio is not
    # installed here, and each failed import searches sys.path again (~50 µs). A None entry
    # makes the import fail at once, so the load generator spends its CPU on HTTP instead.
    # Only this process: the services keep the environment as it is.
    if find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]
    spec = orjson.loads(Path(spec_file).read_bytes())
    Path(out_file).write_bytes(orjson.dumps(asyncio.run(load(spec))))
    return 0


# --- phases ---------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    latency_ms: np.ndarray[Any, Any]
    statuses: list[int]
    crcs: list[int]
    sizes: list[int]
    seconds: float
    cpu: dict[str, list[float]]  # (user, system) seconds of each process group
    requested: int
    # wrk reports percentiles, not each request's latency; its crcs are unknown (None) and
    # its sizes are the answers' sizes in no particular order.
    percentiles: dict[float, float] | None = None
    concurrency: int = 1

    @property
    def requests(self) -> int:
        return len(self.statuses)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        if self.percentiles is not None:
            return self.percentiles[q]
        return float(np.percentile(self.latency_ms, q))

    def cpu_ms_per_request(self, name: str) -> float:
        return sum(self.cpu[name]) * 1000 / self.requests

    def system_share(self, name: str) -> float:
        user, system = self.cpu[name]
        return system / (user + system) if user + system else 0.0


@dataclass
class Runner:
    base_url: str
    headers: dict[str, str]
    processes: Callable[[], dict[str, list[int]]]
    concurrency: int
    max_seconds: float
    workdir: Path
    client: str = "python"
    runs: int = field(default=0)

    def run(
        self,
        name: str,
        paths: Sequence[str],
        requests: int,
        warmup_paths: Sequence[str],
        warmup: int,
        concurrency: int | None = None,
    ) -> Phase:
        self.runs += 1
        if self.client == "wrk":
            if warmup:
                self.wrk(warmup_paths, warmup, concurrency or self.concurrency)
            return self.timed_wrk(name, paths, requests, concurrency or self.concurrency)
        spec_file = self.workdir / f"spec-{self.runs}.json"
        out_file = self.workdir / f"out-{self.runs}.json"
        spec = {
            "base_url": self.base_url,
            "headers": self.headers,
            "pids": self.processes(),
            "database": BENCH_DATABASE,
            "concurrency": concurrency or self.concurrency,
            "max_seconds": self.max_seconds,
            "paths": list(paths),
            "requests": requests,
            "warmup_paths": list(warmup_paths),
            "warmup": warmup,
        }
        spec_file.write_bytes(orjson.dumps(spec))
        env = os.environ | {
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            )
        }
        command = [sys.executable, "-m", "bench.api", "--loadgen", str(spec_file), str(out_file)]
        done = subprocess.run(
            command, cwd=REPO_ROOT, env=env, capture_output=True, timeout=self.max_seconds + 300
        )
        if done.returncode != 0:
            raise BenchFailure(f"load generator failed:\n{done.stderr.decode()[-4000:]}")
        out = orjson.loads(out_file.read_bytes())
        results = out["results"]
        if not results:
            raise BenchFailure(f"{name}: no request completed")
        latency = np.array([r[0] for r in results], dtype=np.float64) / 1e6
        phase = Phase(
            name,
            latency,
            [r[1] for r in results],
            [r[2] for r in results],
            [r[3] for r in results],
            out["seconds"],
            out["cpu"],
            requests,
        )
        print(
            f"{name}: {phase.requests:,} requests in {phase.seconds:.2f} s, "
            f"{phase.rps:,.0f}/s, p50 {phase.pct(50):.2f} ms, p99 {phase.pct(99):.2f} ms "
            f"(PostgreSQL processes counted: {out['processes']['PostgreSQL']})",
            flush=True,
        )
        return phase

    def wrk(
        self, paths: Sequence[str], requests: int, concurrency: int
    ) -> tuple[dict[str, Any], float, Any]:
        """Run wrk until ``requests`` answers came back: (its report, seconds, its rusage)."""
        tag = f"wrk-{self.runs}-{len(paths)}-{requests}"
        paths_file, out_file = self.workdir / f"{tag}.paths", self.workdir / f"{tag}.json"
        done = Path(f"{out_file}.done")
        # wrk asks the script for one request per thread before it connects and never sends
        # it: the first line is spent there, so it is a spare copy of the first path.
        paths_file.write_text("\n".join([paths[0], *paths]) + "\n")
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{self.max_seconds + 60:.0f}s"]
        for name, value in self.headers.items():
            command += ["-H", f"{name}: {value}"]
        command += ["-s", str(WRK_SCRIPT), self.base_url, "--"]
        command += [str(paths_file), str(requests), str(out_file)]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = started + self.max_seconds
        while not done.exists() and time.perf_counter() < deadline and process.poll() is None:
            time.sleep(0.002)
        seconds = time.perf_counter() - started
        process.send_signal(signal.SIGINT)
        _pid, status, usage = os.wait4(process.pid, 0)
        if not out_file.exists():
            err = process.stderr.read().decode() if process.stderr else ""
            raise BenchFailure(f"wrk failed (status {status}): {err[-2000:]}")
        return orjson.loads(out_file.read_bytes()), seconds, usage

    def timed_wrk(self, name: str, paths: Sequence[str], requests: int, concurrency: int) -> Phase:
        # At most concurrency - 1 requests are in flight past the limit: stop that much early,
        # so that a list of distinct firms never wraps around to one already answered.
        limit = requests if len(paths) < requests else max(1, requests - concurrency + 1)
        groups = self.processes()
        before = cpu_ticks(groups, BENCH_DATABASE)
        report, seconds, usage = self.wrk(paths, limit, concurrency)
        after = cpu_ticks(groups, BENCH_DATABASE)
        cpu = {k: list(v) for k, v in cpu_seconds(before, after).items()}
        cpu["load generator"] = [usage.ru_utime, usage.ru_stime]
        n = int(report["requests"])
        statuses = [int(s) for s, c in report["statuses"].items() for _ in range(c)]
        statuses += [0] * (n - len(statuses) + int(report["errors"]))
        latency = {float(q): v / 1000 for q, v in report["latency_us"].items() if q != "max"}
        latency[100.0] = report["latency_us"]["max"] / 1000
        phase = Phase(
            name,
            np.array([]),
            statuses,
            [],
            [int(size) for size, c in report["sizes"].items() for _ in range(c)],
            seconds,
            cpu,
            limit,
            percentiles=latency,
            concurrency=concurrency,
        )
        print(
            f"{name}: {phase.requests:,} requests in {phase.seconds:.2f} s, "
            f"{phase.rps:,.0f}/s, p50 {phase.pct(50):.2f} ms, p99 {phase.pct(99):.2f} ms (wrk)",
            flush=True,
        )
        return phase


def matches_path(firm_id: int) -> str:
    return f"/v1/firms/{firm_id}/matches"


def check_statuses(phase: Phase) -> None:
    bad = Counter(s for s in phase.statuses if s != 200)
    if bad:
        summary = ", ".join(f"{n}× {s or 'no answer'}" for s, n in bad.most_common())
        raise BenchFailure(f"{phase.name}: {sum(bad.values())} requests failed ({summary})")


def check_answer(answer: dict[str, Any], firm_id: int, expect: Expectation) -> list[str]:
    problems = []
    if answer.get("firm_id") != firm_id:
        problems.append(f"firm_id {answer.get('firm_id')}")
    if answer.get("degraded") is not False:
        problems.append(f"degraded: {answer.get('degraded_reason')}")
    if answer.get("model_version") != expect.model_version:
        problems.append(f"model {answer.get('model_version')}, expected {expect.model_version}")
    if answer.get("is_prior") is not expect.is_prior:
        problems.append(f"is_prior {answer.get('is_prior')}")
    if answer.get("catalogue_version") != expect.catalogue_version:
        problems.append(f"catalogue {answer.get('catalogue_version')}")
    if answer.get("evaluated") != expect.products:
        problems.append(f"evaluated {answer.get('evaluated')} products, not {expect.products}")
    return problems


@dataclass
class Expectation:
    model_version: str
    is_prior: bool
    catalogue_version: str
    products: int


def cache_keys(cache: redis.Redis, portal_id: int) -> dict[int, list[bytes]]:
    """Stored match answers of the portal's firms, by firm id."""
    prefix = f"{CACHE_PREFIX}match:{portal_id}:"
    found: dict[int, list[bytes]] = {}
    for key in cache.scan_iter(match=prefix + "*", count=5000):
        firm = int(key[len(prefix) :].split(b":", 1)[0])
        found.setdefault(firm, []).append(key)
    return found


def verify_uncached(
    phase: Phase,
    firms: Sequence[int],
    cache: redis.Redis,
    portal_id: int,
    expect: Expectation,
    before: dict[int, list[bytes]],
) -> list[int]:
    """Each request missed (its firm has exactly one new stored answer), matching ranked it with
    the expected model and catalogue, and the client got exactly the bytes that were stored.
    Returns the eligible count of each answer."""
    check_statuses(phase)
    after = cache_keys(cache, portal_id)
    problems: list[str] = []
    eligible = []
    stored_sizes: Counter[int] = Counter()
    # The Python client's answers are the first ones sent, in order. wrk's are the first
    # ``requests`` to come back: up to concurrency - 1 sent before them may still have been in
    # flight when it stopped, so those firms may have no answer (but never two).
    in_flight = 0 if phase.crcs else phase.concurrency - 1
    unanswered = 0
    for index, firm in enumerate(firms[: phase.requests + in_flight]):
        seen = set(before.get(firm, []))
        new = [k for k in after.get(firm, []) if k not in seen]
        if len(new) == 0 and unanswered < in_flight:
            unanswered += 1
            continue
        if len(new) != 1:
            problems.append(f"firm {firm}: {len(new)} answers stored, expected 1 (a miss)")
            continue
        stamped_answer = cache.get(new[0])
        # The gateway stores the answer behind a line of the versions it was computed from.
        stored = None if stamped_answer is None else stamped_answer.partition(b"\n")[2]
        if stored is None:
            problems.append(f"firm {firm}: its stored answer expired")
            continue
        if phase.crcs and (zlib.crc32(stored), len(stored)) != (
            phase.crcs[index],
            phase.sizes[index],
        ):
            problems.append(f"firm {firm}: the client got other bytes than were stored")
        stored_sizes[len(stored)] += 1
        answer = orjson.loads(stored)
        problems += [f"firm {firm}: {p}" for p in check_answer(answer, firm, expect)]
        eligible.append(int(answer["eligible"]))
        if len(problems) > 20:
            break
    if not phase.crcs:  # wrk: each answer's size is one of the stored answers' sizes
        extra = Counter(phase.sizes) - stored_sizes
        if sum(extra.values()) >= phase.concurrency:  # in flight past the limit: not checked
            problems.append(f"{sum(extra.values())} answers of sizes no stored answer has")
    if problems:
        raise BenchFailure(f"{phase.name}: " + "; ".join(problems[:20]))
    return eligible


def verify_same_bytes(phase: Phase, paths_crc: Sequence[tuple[int, int]]) -> None:
    """Each answer is byte for byte the expected one of its URL (cached answer or floor body)."""
    check_statuses(phase)
    if not phase.crcs:  # wrk: sizes only, in no particular order
        expected_sizes = {size for _crc, size in paths_crc}
        wrong = [i for i, size in enumerate(phase.sizes) if size not in expected_sizes]
    else:
        wrong = [
            i
            for i, (crc, size) in enumerate(zip(phase.crcs, phase.sizes, strict=True))
            if (crc, size) != paths_crc[i % len(paths_crc)]
        ]
    if wrong:
        raise BenchFailure(f"{phase.name}: {len(wrong)} answers differ from the expected bytes")


# --- profile ------------------------------------------------------------------------------


@contextmanager
def py_spy(pids: dict[str, int], outdir: Path) -> Iterator[dict[str, Path]]:
    """py-spy record on each process for the duration of the block (raw collapsed stacks)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    binary = shutil.which("py-spy", path=search)
    if binary is None:
        raise BenchFailure("--profile needs py-spy: .venv/bin/pip install py-spy")
    outdir.mkdir(parents=True, exist_ok=True)
    files = {name: outdir / f"{name}.raw" for name in pids}
    spies = []
    for name, pid in pids.items():
        command = [
            binary, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
            "--nonblocking", "--threads", "-o", str(files[name]),
        ]  # fmt: skip
        with (outdir / f"{name}.py-spy.log").open("wb") as log:
            spies.append(subprocess.Popen(command, stdout=log, stderr=log))
    time.sleep(1.5)  # attached
    try:
        yield files
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()


# Leaf frames where py-spy caught a thread waiting rather than working (it counts some waits
# in system calls as active): shown apart, not in the breakdown.
WAITING = (
    "EpollSelector.select",
    "Condition.wait",
    "Event.wait",
    "Thread.join",
    "Connection.wait (psycopg",  # waiting for PostgreSQL's answer
)


def frame_name(frame: str) -> str:
    """``func (path:line)`` without the line: one name per function."""
    return frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") and ":" in frame else frame


def frame_package(frame: str) -> str:
    """Where a frame's code lives: a library or stdlib module (first path component), or the
    project module (services.gateway.api.matches)."""
    path = frame.rsplit(" (", 1)[-1].rstrip(")").rsplit(":", 1)[0]
    if path.startswith("<frozen "):
        return path.removeprefix("<frozen ").rstrip(">").split(".", 1)[0]
    if path.startswith(("services/", "shared/", "bench/")):
        return path.removesuffix(".py").replace("/", ".")
    return path.split("/", 1)[0].removesuffix(".py")


def summarize_profile(name: str, raw: Path, top: int = 12) -> list[str]:
    """Self time by package or module, and the project's functions by inclusive time."""
    if not raw.exists() or raw.stat().st_size == 0:
        return [f"{name}: no samples (could py-spy attach?)"]
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = waiting = socket_calls = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if " (" in f]  # the first item names the thread
        if not frames:
            continue
        if frames[-1].startswith(WAITING):
            waiting += count
            continue
        if "(asyncio/selector_events.py:" in frames[-1]:
            # send/recv on a socket: the system call, and the time the process waits for a CPU
            # after waking the peer on a busy machine (py-spy cannot tell them apart)
            socket_calls += count
            continue
        total += count
        self_time[frame_package(frames[-1])] += count
        for function in {frame_name(f) for f in frames}:
            inclusive[function] += count
    lines = [
        f"{name}: {total:,} samples in Python and native code at 250 Hz ({total / 250:.1f} s); "
        f"left out: {socket_calls:,} in socket send/recv calls, {waiting:,} waiting (select, "
        "thread pool, PostgreSQL)"
    ]
    if not total:
        return lines
    lines.append("  self time by package or module")
    lines += [f"    {n / total:6.1%}  {package}" for package, n in self_time.most_common(top)]
    lines.append("  inclusive time of the project's functions")
    project = [
        (function, n)
        for function, n in inclusive.most_common()
        if "(services/" in function or "(shared/" in function
    ]
    lines += [f"    {n / total:6.1%}  {function}" for function, n in project[:top]]
    return lines


# --- report -------------------------------------------------------------------------------


def machine_info(db_url: str, cache: redis.Redis) -> list[tuple[str, str]]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    redis_version = str(cache.info("server").get("redis_version", "?"))
    cpus = f"{os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})"
    libraries = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("fastapi", "starlette", "pydantic", "uvicorn", "httpx", "redis", "orjson")
    )
    missing = [m for m in ("uvloop", "httptools") if find_spec(m) is None]
    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    http = "httptools" if find_spec("httptools") else "h11"
    server = f"uvicorn, 1 worker per service, {loop} loop, {http} HTTP parser"
    if missing:
        server += f" ({', '.join(missing)} not installed)"
    return [
        ("CPUs", cpus),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("platform", platform.platform()),
        ("PostgreSQL", str(row[0])),
        ("Redis", redis_version),
        ("libraries", libraries),
        ("servers", server),
        ("load avg", " / ".join(f"{load:.2f}" for load in os.getloadavg()) + " (1/5/15 min)"),
    ]


def print_report(
    info: list[tuple[str, str]],
    notes: list[str],
    phases: list[Phase],
    concurrency: int,
) -> tuple[Phase, Phase, Phase, Phase]:
    uncached, cached, floor, hops = phases
    print("\nmachine")
    for label, value in info:
        print(f"  {label:<11} {value}")
    for note in notes:
        print(f"  {note}")

    print(
        f"\nGET /v1/firms/{{id}}/matches, {concurrency} concurrent"
        f"{'':<14}{'requests':>9} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'req/s':>7}"
        f" {'body KB':>8}"
    )
    for phase in phases:
        print(
            f"{phase.name:<52}{phase.requests:>9,} {phase.pct(50):>7.2f} {phase.pct(90):>7.2f} "
            f"{phase.pct(99):>7.2f} {phase.pct(100):>7.2f} {phase.rps:>7,.0f} "
            f"{np.mean(phase.sizes) / 1024:>8.1f}"
        )
    print("  latencies in ms, at the client (the load generator), request sent to body read")
    for phase in phases:
        if phase.requests < phase.requested:
            print(f"  {phase.name}: stopped at the time cap after {phase.requests:,} requests")

    names = ("gateway", "matching", "registry", "load generator", "PostgreSQL", "Redis")
    labels = ("gateway", "matching", "registry", "loadgen", "postgres", "redis")
    header = "".join(f"{label:>9}" for label in (*labels, "other", "machine"))
    print(f"\nCPU ms per request{'':<34}{header} {'busy':>5}")
    cores = len(os.sched_getaffinity(0))
    for phase in phases:
        own = [phase.cpu_ms_per_request(n) for n in names]
        machine = phase.cpu_ms_per_request("machine")
        busy = sum(phase.cpu["machine"]) / (phase.seconds * cores)
        cells = "".join(f"{v:>9.2f}" for v in (*own, machine - sum(own), machine))
        print(f"{phase.name:<52}{cells} {busy:>5.0%}")
    print("  share of that CPU time spent in the kernel (system time)")
    for phase in phases:
        shares = "".join(f"{phase.system_share(n):>9.0%}" for n in names)
        print(f"    {phase.name[:46]:<48}{shares}{'':>9}{phase.system_share('machine'):>9.0%}")
    print(
        "  other = the machine's busy CPU less the processes named: the kernel's network work "
        "not charged to them, and anything else running on the machine; busy = share of all "
        "CPUs. postgres counts the backends alive at the start and the end of the phase"
    )
    # A shared machine's speed varies from run to run (other work, CPU contention inflates
    # every process's CPU time). The floor's gateway CPU is a fixed piece of work measured in
    # the same run, so uncached costs in units of it compare across runs far better.
    yardstick = floor.cpu_ms_per_request("gateway")
    if yardstick > 0:
        units = ", ".join(
            f"{label} {uncached.cpu_ms_per_request(name) / yardstick:.1f}"
            for name, label in zip(names[:4], labels[:4], strict=True)
        )
        print(
            f"  uncached CPU per request in floor units (the floor's gateway CPU per request, "
            f"{yardstick:.2f} ms in this run): {units}"
        )

    cost_ratio = floor.rps / cached.rps
    p50_ratio = cached.pct(50) / floor.pct(50)
    gateway_ratio = cached.cpu_ms_per_request("gateway") / floor.cpu_ms_per_request("gateway")
    machine_ratio = cached.cpu_ms_per_request("machine") / floor.cpu_ms_per_request("machine")
    print(
        f"\ncached ÷ floor: {cost_ratio:.2f}× the cost per request (1/req/s), "
        f"{p50_ratio:.2f}× the p50; CPU per request: {gateway_ratio:.2f}× the gateway's, "
        f"{machine_ratio:.2f}× the machine's"
    )
    for phase in phases:
        client_share = sum(phase.cpu["load generator"]) / phase.seconds
        if client_share >= 0.9:
            print(
                f"  {phase.name}: the load generator used {client_share:.0%} of a CPU, so its "
                "req/s is the client's limit more than the server's"
            )
    targets = [
        (
            f"uncached p99 ≤ {TARGET_UNCACHED_P99_MS:g} ms",
            f"{uncached.pct(99):.1f} ms",
            uncached.pct(99) <= TARGET_UNCACHED_P99_MS,
        ),
        (
            f"uncached ≥ {TARGET_UNCACHED_RPS:g} requests/s",
            f"{uncached.rps:,.0f}/s",
            uncached.rps >= TARGET_UNCACHED_RPS,
        ),
        (
            f"cached ≤ {TARGET_CACHED_FLOOR_RATIO:g}× the floor's cost per request",
            f"{cost_ratio:.2f}×",
            cost_ratio <= TARGET_CACHED_FLOOR_RATIO,
        ),
    ]
    print("\ntargets")
    for target, actual, met in targets:
        print(f"  {target:<46} {actual:>12}  {'met' if met else 'NOT met'}")
    # What no uncached answer can beat here: the same calls with nothing to do at either end.
    print(
        f"  the hops floor (the uncached path's calls, precomputed bytes at each end): "
        f"p99 {hops.pct(99):.1f} ms, {hops.rps:,.0f}/s, machine CPU "
        f"{hops.cpu_ms_per_request('machine'):.2f} ms per request; the uncached path adds "
        f"{uncached.cpu_ms_per_request('machine') - hops.cpu_ms_per_request('machine'):.2f} ms "
        f"(the database read, the ranking, the answer's JSON, storing it, the match events)"
    )
    return uncached, cached, floor, hops


# --- main -----------------------------------------------------------------------------------


def wait_for_model(
    client: httpx.Client,
    cache: redis.Redis,
    firms: Sequence[int],
    portal_id: int,
    model_version: str,
) -> dict[str, Any]:
    """Spend warm-up firms until the gateway stamps its cached answers with the trained model
    (a promotion it did not make reaches it by polling) and matching ranks with it; returns
    the last answer."""
    deadline = time.monotonic() + MODEL_SWITCH_TIMEOUT_SECONDS
    for firm in firms:
        response = client.get(matches_path(firm))
        if response.status_code != 200:
            raise BenchFailure(f"warm-up answered {response.status_code}: {response.text[:2000]}")
        answer: dict[str, Any] = response.json()
        keys = cache_keys(cache, portal_id).get(firm, [])
        # The stored answer's stamp line names the model it was computed with.
        stamps = [(cache.get(k) or b"").partition(b"\n")[0].split(b"|") for k in keys]
        if answer["model_version"] == model_version and any(
            model_version.encode() in stamp for stamp in stamps
        ):
            return answer
        if time.monotonic() > deadline:
            break
        time.sleep(1.0)
    raise BenchFailure(f"the gateway did not switch to model {model_version} in time")


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

    with services(db_url, redis_url, floor_file, firm_file) as svc:
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
        before = cache_keys(cache, world.portal_id)
        uncached = runner.run(
            "uncached: each request a new firm → matching",
            [matches_path(f) for f in measured],
            len(measured),
            [matches_path(f) for f in open_firms],
            len(open_firms),
        )
        eligible = verify_uncached(uncached, measured, cache, world.portal_id, expect, before)

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
            if args.client == "python"
            else (
                f"checked     each uncached request stored one new answer (a miss), ranked by "
                f"matching with {expected_model}, not degraded; every answer 200 with the size "
                f"of its expected bytes (wrk sees sizes, not bytes); no new answer computed"
            ),
        ]
        info = machine_info(db_url, cache)
        client = (
            "wrk, 1 thread (C: the servers' limit, not the client's)"
            if args.client == "wrk"
            else "bench.api --loadgen (Python httpx, ~1.3 ms CPU per request: often the limit)"
        )
        info.append(("client", client))

    print_report(info, notes, [uncached, cached, floor, hops], args.concurrency)
    if profile_lines:
        print("\nprofile of the uncached path")
        for line in profile_lines:
            print(f"  {line}")
    return 0


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
