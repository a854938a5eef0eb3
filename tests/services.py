"""Where the real PostgreSQL and Redis for integration tests are, and whether they are required."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

POSTGRES_URL = os.environ.get("FINMATCH_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("FINMATCH_TEST_REDIS_URL")
REQUIRED = os.environ.get("FINMATCH_REQUIRE_SERVICES") == "1"


def need_postgres() -> str:
    """The PostgreSQL URL, or skip (fail when CI made the service mandatory)."""
    if POSTGRES_URL:
        return POSTGRES_URL
    reason = "PostgreSQL tests need FINMATCH_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    if REQUIRED:
        pytest.fail(f"FINMATCH_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def need_redis() -> str:
    if REDIS_URL:
        return REDIS_URL
    reason = "Redis tests need FINMATCH_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
    if REQUIRED:
        pytest.fail(f"FINMATCH_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def need_redis_server() -> str:
    """The redis-server executable (tests that stop and restart a Redis of their own), or skip
    (fail when CI made the services mandatory)."""
    found = shutil.which("redis-server")
    if found:
        return found
    reason = "needs the redis-server executable on PATH"
    if REQUIRED:
        pytest.fail(f"FINMATCH_REQUIRE_SERVICES=1 but the test {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisProcess:
    """A throwaway redis-server of a test's own (never the shared one): started, killed,
    started again on the same port; no persistence, so a restart comes back empty."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError), redis.Redis.from_url(self.url) as client:
                if client.ping():
                    return
            time.sleep(0.05)  # polling with a deadline for the server to listen
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stored_keys(self) -> list[bytes]:
        with redis.Redis.from_url(self.url) as client:
            return list(client.scan_iter(count=1000))


@contextlib.contextmanager
def redis_process() -> Iterator[RedisProcess]:
    """A started RedisProcess, killed afterwards (skips, or fails, without redis-server)."""
    server = RedisProcess(need_redis_server())
    server.start()
    try:
        yield server
    finally:
        server.kill()
