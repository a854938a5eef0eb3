"""A PostgreSQL cluster and a redis-server of the drill's own, which it may stop, kill and restart.

The machine's shared PostgreSQL and Redis (the ones other tests use) are never touched: each
drill runs initdb in a temporary directory and starts both servers on free loopback ports.
The server binaries are found at runtime (on PATH, else under Debian's versioned directory);
without them a drill skips, or fails when FINMATCH_REQUIRE_SERVICES=1 (as in CI).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.e2e.cluster import free_port
from tests.services import REQUIRED

START_TIMEOUT = 60.0
# PostgreSQL refuses to run as root; as root the drill runs it as this (Debian's) user.
POSTGRES_OS_USER = "postgres"


def _missing(what: str, hint: str) -> None:
    reason = f"fault drills need {what} ({hint})"
    if REQUIRED:
        pytest.fail(f"FINMATCH_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def _version_key(path: str) -> tuple[int, ...]:
    parts = Path(path).parts
    return tuple(int(p) for p in parts if p.isdigit()) or (0,)


def postgres_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: PATH first, else the newest of
    Debian's versioned server directories."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent  # Debian links them from elsewhere
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version_key)
    if not found:
        _missing("the PostgreSQL server binaries (initdb, pg_ctl)", "apt-get install postgresql")
    return Path(found[-1]).parent


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        _missing("redis-server", "apt-get install redis-server")
        raise AssertionError("unreachable")
    return found


def _os_user() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: ourselves, or the postgres user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        _missing(f"an OS user {POSTGRES_OS_USER!r} to run PostgreSQL as (not root)", "useradd")
        raise AssertionError("unreachable") from None


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, on a free port, trust auth on loopback."""

    def __init__(self, root: Path, bindir: Path) -> None:
        self.bindir = bindir
        self.data = root / "data"
        self.sockets = root / "run"
        self.log_path = root / "postgres.log"
        self.port = free_port()
        self.user = _os_user()

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> None:
        done = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            user=self.user.pw_uid if self.user else None,
            group=self.user.pw_gid if self.user else None,
            # pg_ctl leaves the postmaster running: it must not sit in pytest's process group.
            start_new_session=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def init(self) -> None:
        self.sockets.mkdir()
        if self.user is not None:
            for path in (self.sockets.parent, self.sockets):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.log_path),
            "-o", options, "-w", "-t", str(int(START_TIMEOUT)), *extra,
        )  # fmt: skip

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ensure_stopped(self) -> None:
        """At the end of a drill: stop it whatever state the drill left it in."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", timeout=30)
            return
        with contextlib.suppress(OSError, ValueError):  # pg_ctl failed: the postmaster alone
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


class RedisServer:
    """One redis-server without persistence on a free port: killed, it comes back empty."""

    def __init__(self, root: Path, binary: str) -> None:
        self.binary = binary
        self.root = root
        self.log_path = root / "redis.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _options(self) -> list[str]:
        options = {"port": str(self.port), "bind": "127.0.0.1", "save": "", "appendonly": "no"}
        return [arg for name, value in options.items() for arg in (f"--{name}", value)] + [
            "--dir",
            str(self.root),
        ]

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, *self._options()],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited:\n{self.log()}")
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL to this redis-server's pid alone."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def servers() -> Iterator[tuple[PostgresServer, RedisServer]]:
    """A running PostgreSQL cluster and Redis of this drill's own, removed afterwards."""
    bindir, redis_binary = postgres_bindir(), redis_server_binary()
    # Not pytest's tmp_path: that is private to us, and PostgreSQL may run as another user.
    root = Path(tempfile.mkdtemp(prefix="finmatch-drill-"))
    root.chmod(0o711)  # mkdtemp's 0700 would keep the postgres user out
    postgres = PostgresServer(root / "postgres", bindir)
    (root / "postgres").mkdir()
    redis_server = RedisServer(root, redis_binary)
    try:
        postgres.init()
        postgres.start()
        redis_server.start()
        yield postgres, redis_server
    finally:
        redis_server.kill()
        postgres.ensure_stopped()
        shutil.rmtree(root, ignore_errors=True)
