"""Registry, matching and gateway as real uvicorn processes, started and stopped."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.api.common import (
    CACHE_PREFIX,
    FIRM_BODY_VARIABLE,
    FLOOR_BODY_VARIABLE,
    READY_TIMEOUT_SECONDS,
    REPO_ROOT,
    TRAIN_TIMEOUT_SECONDS,
    BenchFailure,
)
from bench.api.cprofiling import VARIABLE as CPROFILE_VARIABLE
from bench.import_firms import free_port


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
def services(
    db_url: str,
    redis_url: str,
    floor_body: Path,
    firm_body: Path,
    gateway_settings: Mapping[str, str] | None = None,
    cprofile_dir: Path | None = None,
    firm_entries: bool = True,
) -> Iterator[Services]:
    """The three services; ``gateway_settings`` (FINMATCH_* variables) override the gateway's.

    An empty ``redis_url`` runs the gateway's cache and matching's events in-process. With
    ``cprofile_dir``, each service runs under cProfile (bench.api.cprofiling), writing
    ``<dir>/<name>.prof`` when sent SIGUSR2. ``firm_entries``: the registry writes the firms'
    entries to the gateway's Redis (shared/firm_entries.py); False: it has no Redis, and the
    gateway asks it for every uncached match's firm."""

    def profiled(name: str) -> dict[str, str]:
        if cprofile_dir is None:
            return {}
        return {CPROFILE_VARIABLE: str(cprofile_dir / f"{name}.prof")}

    admin_key = secrets.token_urlsafe(32)
    internal_token = secrets.token_urlsafe(32)
    env = os.environ | {
        "FINMATCH_INTERNAL_TOKEN": internal_token,
        "FINMATCH_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    with ExitStack() as stack:
        registry_env = env | {"FINMATCH_DATABASE_URL": db_url, FIRM_BODY_VARIABLE: str(firm_body)}
        registry_env |= profiled("registry")
        if firm_entries and redis_url:
            registry_env |= {"FINMATCH_REDIS_URL": redis_url, "FINMATCH_REDIS_PREFIX": CACHE_PREFIX}
        registry = start_server("registry", "bench.api.apps:registry_app", registry_env)
        stack.callback(stop_server, registry)
        matching_env = (
            env
            | {
                "FINMATCH_REGISTRY_URL": registry.url,
                "FINMATCH_REDIS_URL": redis_url,
                "FINMATCH_MODEL_SIGNING_KEY": secrets.token_urlsafe(32),
                "FINMATCH_AUTO_RETRAIN": "false",  # no retraining in the middle of a phase
                FLOOR_BODY_VARIABLE: str(floor_body),
            }
            | profiled("matching")
        )
        matching = start_server("matching", "bench.api.apps:matching_app", matching_env)
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
        gateway_env |= dict(gateway_settings or {}) | profiled("gateway")
        gateway = start_server("gateway", "bench.api.apps:gateway_app", gateway_env)
        stack.callback(stop_server, gateway)
        try:
            yield Services(registry, matching, gateway, admin_key, internal_token)
        except BenchFailure:
            for server in (registry, matching, gateway):
                output = server_output(server).strip()
                if output:
                    print(f"--- {server.name} output (tail)\n{output}", file=sys.stderr)
            raise


def train_model(gateway_url: str, admin_key: str) -> dict[str, Any]:
    """Queue a training job through the gateway and poll it to its end; its outcome."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    response = httpx.post(
        f"{gateway_url}/v1/admin/models/train",
        json={"auto_promote": True},
        headers=headers,
        timeout=30,
    )
    if response.status_code != 202:
        raise BenchFailure(f"training answered {response.status_code}: {response.text[:2000]}")
    deadline = time.monotonic() + TRAIN_TIMEOUT_SECONDS
    job: dict[str, Any] = response.json()
    while job["status"] in {"queued", "running"}:
        if time.monotonic() > deadline:
            raise BenchFailure(f"training job {job['id']} still {job['status']}")
        time.sleep(1.0)
        polled = httpx.get(
            f"{gateway_url}{response.headers['location']}", headers=headers, timeout=30
        )
        if polled.status_code != 200:
            raise BenchFailure(f"job poll answered {polled.status_code}: {polled.text[:2000]}")
        job = polled.json()
    if job["status"] != "succeeded":
        raise BenchFailure(f"training job {job['id']} failed: {job['error']}")
    outcome: dict[str, Any] = job["outcome"]
    if not outcome.get("promoted"):
        raise BenchFailure(f"the trained model was not promoted: {outcome.get('reason')}")
    return outcome
