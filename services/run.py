"""`make run`: each finmatch service and the webhook dispatcher as its own process, on SQLite.

The terminal stays readable: every line a service writes goes to ``var/log/<service>.log``;
the console shows the banner, progress bars, warnings and errors (each prefixed with its
service), and more when ``FINMATCH_LOG_LEVEL`` asks for it (INFO shows the access lines too).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

KEYS_FILE = Path("var/demo-keys.json")
LOG_DIR = Path("var/log")
# A service's text log line (shared.logging.TEXT_FORMAT): "<date> <time> LEVEL service=…".
_LOG_LINE = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
# Uvicorn's own start-up lines ("INFO:     Started server process [12]").
_UVICORN_LINE = re.compile(rb"^(DEBUG|INFO|WARNING|ERROR|CRITICAL): ")


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    args: tuple[str, ...]
    port_variable: str
    default_port: int
    # What answers 200 once it is up (the dispatcher serves only its metrics).
    ready_path: str = "/readyz"

    @property
    def port(self) -> int:
        return int(os.environ.get(self.port_variable, self.default_port))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


SERVICES = (
    ServiceSpec(
        "registry",
        ("-m", "services.registry.cli", "serve", "--seed"),
        "FINMATCH_REGISTRY_PORT",
        8001,
    ),
    ServiceSpec(
        "matching", ("-m", "services.matching.cli", "serve"), "FINMATCH_MATCHING_PORT", 8002
    ),
    ServiceSpec(
        "gateway",
        (
            "-m",
            "services.gateway.cli",
        ),
        "FINMATCH_GATEWAY_PORT",
        8000,
    ),
    # Last: it reads the registry's database, migrated by then. Stopped first.
    ServiceSpec(
        "dispatcher",
        ("-m", "services.registry.dispatcher"),
        "FINMATCH_DISPATCHER_METRICS_PORT",
        8003,
        ready_path="/metrics",
    ),
)


class ConsoleTee:
    """Copies a service's output to its log file whole, and to the console what a person at
    the terminal needs: lines at ``level`` or above, and anything that is not a log line
    (progress bars, tracebacks, prints). Progress bars redraw with carriage returns, so the
    output is cut at both \\n and \\r and each piece keeps its end."""

    def __init__(self, name: str, source: IO[bytes], log_path: Path, level: int) -> None:
        self.name = name
        self.source = source
        self.log_path = log_path
        self.level = level
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._pump, name=f"tee-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def shown(self, piece: bytes) -> bool:
        logged = _LOG_LINE.match(piece) or _UVICORN_LINE.match(piece)
        if logged is None:
            return bool(piece.strip())
        level: int = logging.getLevelName(logged.group(1).decode())
        return level >= self.level

    def _pump(self) -> None:
        pending = b""
        fd = self.source.fileno()
        with self.log_path.open("ab") as log:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
                pending += chunk
                pieces = re.split(rb"(?<=[\r\n])", pending)
                pending = pieces.pop()  # an unfinished piece waits for its end
                for piece in pieces:
                    if self.shown(piece):
                        self._echo(piece)
            if pending and self.shown(pending):
                self._echo(pending + b"\n")

    def _echo(self, piece: bytes) -> None:
        prefix = f"[{self.name}] ".encode()
        with _CONSOLE:
            sys.stdout.buffer.write(prefix + piece)
            sys.stdout.buffer.flush()


_CONSOLE = threading.Lock()


def console_level() -> int:
    """What reaches the console: WARNING, unless FINMATCH_LOG_LEVEL was set to show more."""
    asked = os.environ.get("FINMATCH_LOG_LEVEL")
    level = logging.getLevelName(asked.upper()) if asked else logging.WARNING
    return level if isinstance(level, int) else logging.WARNING


def _signing_key() -> str:
    """A per-machine model signing key kept under var/: models stay loadable across runs."""
    path = Path("var/model-signing.key")
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def wait_ready(spec: ServiceSpec, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{spec.name} exited with code {process.returncode}")
        try:
            if httpx.get(f"{spec.url}{spec.ready_path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{spec.name} was not ready within {timeout:.0f} s")


def main() -> int:
    env = dict(os.environ)
    env.setdefault("FINMATCH_DATABASE_URL", "sqlite:///var/finmatch.db")
    # One fresh internal token per run, shared by the services and never printed.
    env.setdefault("FINMATCH_INTERNAL_TOKEN", secrets.token_urlsafe(32))
    env.setdefault("FINMATCH_MODEL_SIGNING_KEY", _signing_key())
    # Three services share this terminal: lines for people, not JSON for a log pipeline.
    env.setdefault("FINMATCH_LOG_FORMAT", "text")
    # Webhooks to a receiver on this machine (http, loopback) are allowed, at registration
    # and at send time; a deployment refuses them.
    env.setdefault("FINMATCH_WEBHOOK_ALLOW_PRIVATE", "1")
    # Each service finds the others at the ports this run gives them (FINMATCH_*_PORT).
    urls = {spec.name: spec.url for spec in SERVICES}
    env.setdefault("FINMATCH_REGISTRY_URL", urls["registry"])
    env.setdefault("FINMATCH_MATCHING_URL", urls["matching"])
    Path("var").mkdir(exist_ok=True)
    LOG_DIR.mkdir(exist_ok=True)
    processes: list[tuple[ServiceSpec, subprocess.Popen[bytes]]] = []
    tees: list[ConsoleTee] = []
    level = console_level()

    def stop(*_: object) -> None:
        # The dispatcher first (it finishes its sends in flight), the registry last: the gateway
        # sends its last match events to a registry that still answers, and matching stops
        # before the registry it reads from.
        for _spec, process in reversed(processes):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def on_sigterm(*_: object) -> None:
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    # Ctrl-C stops everything, even when this was started from a shell that ignores SIGINT in
    # its background jobs (Python then keeps the inherited SIG_IGN and Ctrl-C would do nothing).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for spec in SERVICES:
            # A process group of its own: Ctrl-C in the terminal reaches this process only,
            # which then stops the services in order (see stop).
            process = subprocess.Popen(
                [sys.executable, *spec.args],
                env=env,
                process_group=0,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            processes.append((spec, process))
            assert process.stdout is not None
            tee = ConsoleTee(spec.name, process.stdout, LOG_DIR / f"{spec.name}.log", level)
            tee.start()
            tees.append(tee)
            wait_ready(spec, process)
        train_first_model(env)
        print_summary()
        while all(p.poll() is None for _s, p in processes):
            time.sleep(0.5)
        failed = [s.name for s, p in processes if p.poll() not in (None, 0)]
        if failed:
            print(f"stopped: {', '.join(failed)} exited", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        print("\nstopping finmatch …", flush=True)
        return 0
    except RuntimeError as exc:
        print(f"finmatch could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        stop()
        for tee in tees:
            tee.join(timeout=5)
        if processes:
            print(f"finmatch stopped: all {len(processes)} processes (logs in {LOG_DIR}/)")


def train_first_model(env: dict[str, str]) -> None:
    """On a fresh system, learn the first model from the seeded history (else keep the champion).

    Training is a job: matching answers 202 at once and trains in the background; the job is
    polled at the registry until it ends, so the banner names the model that will rank.
    """
    matching = next(s for s in SERVICES if s.name == "matching")
    registry = next(s for s in SERVICES if s.name == "registry")
    headers = {"X-Internal-Token": env["FINMATCH_INTERNAL_TOKEN"]}
    current = httpx.get(f"{matching.url}/internal/models/current", headers=headers, timeout=10)
    if current.status_code == 200 and not current.json()["is_prior"]:
        return
    print("training the first matching model on the seeded history …", flush=True)
    queued = httpx.post(
        f"{matching.url}/internal/models/train", json={}, headers=headers, timeout=60
    )
    if queued.status_code != 202:
        print(f"  no model yet ({queued.status_code}): the rule-and-cost prior ranks")
        return
    job_url = f"{registry.url}/internal/training-jobs/{queued.json()['id']}"
    deadline = time.monotonic() + 600
    job = queued.json()
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(1)
        job = httpx.get(job_url, headers=headers, timeout=10).json()
    outcome = job.get("outcome") or {}
    if job["status"] == "succeeded" and outcome.get("version"):
        print(f"  model {outcome['version']} ({outcome.get('algorithm')}): {outcome.get('reason')}")
    else:
        reason = job.get("error") or job["status"]
        print(f"  no model yet ({reason}): the rule-and-cost prior ranks")


def print_summary() -> None:
    gateway = next(s for s in SERVICES if s.name == "gateway")
    dispatcher = next(s for s in SERVICES if s.name == "dispatcher")
    lines = [
        "",
        "finmatch is running (synthetic demo data, SQLite, in-process cache):",
        f"  API        {gateway.url}/v1",
        f"  API docs   {gateway.url}/docs",
        f"  dashboard  {gateway.url}/dashboard  (sign in with an official_* or admin key below)",
        "  internal   "
        + ", ".join(f"{s.name} {s.url}" for s in SERVICES if s.name in ("registry", "matching")),
        f"  webhooks   a dispatcher delivers them (metrics {dispatcher.url}/metrics); http and "
        "private targets allowed (FINMATCH_WEBHOOK_ALLOW_PRIVATE=1)",
    ]
    if KEYS_FILE.exists():
        keys = json.loads(KEYS_FILE.read_text())
        lines.append(
            f"  demo keys (in {KEYS_FILE}, where examples/ reads them; kept until var/ is deleted):"
        )
        lines += [f"    {role:<14} {key}" for role, key in keys.items()]
        # The examples' default URL is the default gateway port's.
        where = "" if gateway.port == 8000 else f" --url {gateway.url}"
        lines.append(
            f"  try        .venv/bin/python examples/receiver.py --ping{where}"
            "   (docs/integration.md)"
        )
    lines.append(f"  logs       {LOG_DIR}/<service>.log (the console shows warnings and errors;")
    lines.append("             FINMATCH_LOG_LEVEL=INFO shows every line here too)")
    lines.append("  Ctrl-C stops all services.")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
