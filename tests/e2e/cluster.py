"""Start finmatch's services as real processes on loopback, the way an operator would.

Each service gets its settings from FINMATCH_* variables only (the run contract in
DESIGN.md), a free port chosen at runtime, and its stdout/stderr captured in a file that
the tests read (request ids in the logs) and that a failing test prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from services.registry.db import normalize_url

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 80
REDIS_PREFIX = "finmatch-e2e:"
# Seconds the e2e dispatcher waits after the 1st, 2nd, … failed attempt of a delivery.
DISPATCHER_RETRY_SCHEDULE = [0.5, 1.0, 2.0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    # How it was started, so that restart() starts it again the same way on the same port.
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    # What answers 200 once it is up: the dispatcher serves its metrics only.
    ready_path: str = "/readyz"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.process.returncode}:\n{self.tail()}"
                )
            try:
                answer = httpx.get(f"{self.url}{self.ready_path}", timeout=1)
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {timeout:.0f} s ({last}):\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no shutdown code runs. Only this pid
        is signalled (each service leads a session of its own, never pytest's group)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it does not exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)


@dataclass
class Cluster:
    """The services of one test run and the secrets they share."""

    database_url: str
    redis_url: str
    log_dir: Path
    internal_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    signing_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    credit_code_hash_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    admin_key: str = field(default_factory=lambda: "e2e-admin-" + secrets.token_urlsafe(32))
    services: dict[str, Service] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        """The parent's environment without its FINMATCH_* settings, plus this cluster's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINMATCH_")}
        env |= {
            "PYTHONUNBUFFERED": "1",
            # Not "development": the services must refuse placeholder secrets, as in production.
            "FINMATCH_ENVIRONMENT": "e2e",
            "FINMATCH_LOG_LEVEL": "INFO",
            "FINMATCH_DATABASE_URL": self.database_url,
            "FINMATCH_REDIS_URL": self.redis_url,
            "FINMATCH_REDIS_PREFIX": REDIS_PREFIX,  # for the gateways that know the setting
            "FINMATCH_INTERNAL_TOKEN": self.internal_token,
            "FINMATCH_MODEL_SIGNING_KEY": self.signing_key,
            "FINMATCH_CREDIT_CODE_HASH_KEY": self.credit_code_hash_key,
            "FINMATCH_BOOTSTRAP_ADMIN_KEY": self.admin_key,
            "FINMATCH_MODEL_POLL_SECONDS": "1",
            "FINMATCH_AUTO_RETRAIN": "false",
            # The tests' webhook receivers listen on loopback over http: the registry accepts
            # such URLs at registration and the dispatcher sends to them.
            "FINMATCH_WEBHOOK_ALLOW_PRIVATE": "1",
        }
        if "registry" in self.services:
            env["FINMATCH_REGISTRY_URL"] = self.services["registry"].url
        return env | extra

    def run(self, *args: str) -> None:
        """A one-off command (e.g. the registry's migrate) that must succeed."""
        done = subprocess.run(
            [sys.executable, *args],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def start(
        self, name: str, *args: str, port_variable: str, ready_path: str = "/readyz", **extra: str
    ) -> Service:
        port = free_port()
        env = self.env(**{port_variable: str(port)}, **extra)
        return self._spawn(name, args, env, port, ready_path)

    def restart(self, name: str) -> Service:
        """Start a service that was stopped or killed again: same command, settings and port
        (the others keep its URL), its log appended to the same file. Not ready yet."""
        old = self.services[name]
        if old.process.poll() is None:
            raise RuntimeError(f"{name} is still running (pid {old.process.pid})")
        return self._spawn(name, old.argv, old.env, old.port, old.ready_path)

    def _spawn(
        self,
        name: str,
        args: tuple[str, ...],
        env: dict[str, str],
        port: int,
        ready_path: str = "/readyz",
    ) -> Service:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            # A session of its own: a signal meant for pytest's process group (Ctrl-C) never
            # reaches a service, and a signal sent to a service reaches nothing else.
            process = subprocess.Popen(
                [sys.executable, *args],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = Service(name, port, process, log_path, argv=args, env=env, ready_path=ready_path)
        self.services[name] = service
        return service

    def start_registry(self, before_serve: Callable[[str], None] | None = None) -> Service:
        """Migrate, let ``before_serve`` fill the database (it gets its URL), then serve."""
        self.run("-m", "services.registry.cli", "migrate")
        if before_serve is not None:
            before_serve(self.database_url)
        registry = self.start(
            "registry",
            "-m",
            "services.registry.cli",
            "serve",
            port_variable="FINMATCH_REGISTRY_PORT",
        )
        registry.wait_ready()
        return registry

    def start_matching(self, name: str = "matching", **extra: str) -> Service:
        return self.start(
            name,
            "-m",
            "services.matching.cli",
            "serve",
            port_variable="FINMATCH_MATCHING_PORT",
            **extra,
        )

    def start_gateway(self, matching: Service, **extra: str) -> Service:
        return self.start(
            "gateway",
            "-m",
            "services.gateway.cli",
            port_variable="FINMATCH_GATEWAY_PORT",
            FINMATCH_MATCHING_URL=matching.url,
            **extra,
        )

    def start_dispatcher(self, matching: Service | None = None) -> Service:
        """The webhook dispatcher, polling often and retrying within seconds (the default
        schedule waits minutes to days): a failed attempt shows its retry while a test waits.
        Start it after the registry, which has migrated the database it reads; ``matching``
        answers its proactive-matching scans."""
        extra = {} if matching is None else {"FINMATCH_MATCHING_URL": matching.url}
        return self.start(
            "dispatcher",
            "-m",
            "services.registry.dispatcher",
            port_variable="FINMATCH_DISPATCHER_METRICS_PORT",
            ready_path="/metrics",
            FINMATCH_DISPATCHER_POLL_SECONDS="0.05",
            FINMATCH_WEBHOOK_RETRY_SCHEDULE_SECONDS=json.dumps(DISPATCHER_RETRY_SCHEDULE),
            **extra,
        )

    def stop(self) -> None:
        # The last started first (the dispatcher, the gateway), the registry last: nothing calls
        # a service that is already gone, and the dispatcher records its sends in flight.
        for service in reversed(list(self.services.values())):
            service.stop()

    def logs(self) -> str:
        return "\n".join(
            f"----- {s.name} (port {s.port}, exit {s.process.returncode}) -----\n{s.tail()}"
            for s in self.services.values()
        )


@contextlib.contextmanager
def fresh_database(base_url: str, label: str) -> Iterator[str]:
    """A new PostgreSQL database finmatch_e2e_<label>_<pid>, dropped afterwards."""
    name = f"finmatch_e2e_{label}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(make_url(normalize_url(base_url)), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# Redis databases the clusters may use: never 0 (the other Redis tests) nor 7 (make bench-api).
REDIS_DBS = (5, 6, 8, 9, 10, 11, 12, 13, 14, 15)
LEASE_KEY = "e2e-lease"  # outside finmatch's key space
LEASE_SECONDS = 900


@contextlib.contextmanager
def redis_database(base_url: str) -> Iterator[str]:
    """A Redis database of the run's own, leased, with finmatch's keys removed afterwards.

    The matching service's Redis keys have fixed names (its training lock, for one), so each
    cluster needs a database that no other cluster uses, in this run (xdist workers) or in a
    concurrent one. A lease key taken with SET NX picks a free one; only finmatch's keys in
    it are deleted (never FLUSHALL/FLUSHDB).
    """
    token = secrets.token_hex(8)
    for db in REDIS_DBS:
        url = str(httpx.URL(base_url).copy_with(path=f"/{db}"))
        client = redis.Redis.from_url(url)
        if client.set(LEASE_KEY, token, nx=True, ex=LEASE_SECONDS):
            break
        client.close()
    else:
        raise RuntimeError(f"every Redis database in {REDIS_DBS} is leased by another run")
    try:
        _delete_finmatch_keys(client)  # leftovers of an interrupted run would be stale caches
        yield url
    finally:
        _delete_finmatch_keys(client)
        if client.get(LEASE_KEY) == token.encode():
            client.delete(LEASE_KEY)
        client.close()


def _delete_finmatch_keys(client: redis.Redis) -> None:
    keys = list(client.scan_iter(match="finmatch*", count=1_000))  # finmatch: and REDIS_PREFIX
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
