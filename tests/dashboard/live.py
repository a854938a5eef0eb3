"""A real gateway on a loopback port (uvicorn in a thread) over an in-process registry and
matching service, on a SQLite database seeded with the synthetic demo data."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from services.gateway.main import create_app as create_gateway
from services.registry.db import make_engine
from services.registry.migrate import upgrade
from services.registry.seed.loader import seed_demo
from tests.e2e.cluster import free_port
from tests.gateway.conftest import gateway_settings, matching_app, registry_app

# Small enough to seed in a few seconds, large enough that the demo town has groups of 3+.
DEMO_FIRMS = 1_500
DEMO_APPLICATIONS = 2_000
READY_SECONDS = 30.0


@dataclass(frozen=True)
class LiveGateway:
    url: str
    keys: dict[str, str]  # role label -> key, as seed_demo issued them

    def api(self, role: str) -> httpx.Client:
        """An API client holding the key of ``role`` (official_city, official_town, ...)."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.keys[role]}"}, timeout=60
        )


@contextmanager
def live_gateway(directory: Path) -> Iterator[LiveGateway]:
    url = f"sqlite:///{directory / 'dashboard.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        seeded = seed_demo(
            engine, n_firms=DEMO_FIRMS, n_applications=DEMO_APPLICATIONS, progress=False
        )
        to_registry = httpx.ASGITransport(app=registry_app(engine))
        matching, _manager = matching_app(to_registry)
        app = create_gateway(
            # Every browser test signs in as an official and the page asks for many figures:
            # the whole file would otherwise spend one official's per-minute budget.
            gateway_settings(rate_limit_official=10_000),
            registry_transport=to_registry,
            matching_transport=httpx.ASGITransport(app=matching),
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, name="dashboard-gateway", daemon=True)
        thread.start()
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, thread)
            yield LiveGateway(url=base, keys=seeded.keys)
        finally:
            server.should_exit = True
            thread.join(timeout=15)
    finally:
        engine.dispose()


def _wait_ready(base: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the gateway thread stopped while starting")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the gateway at {base} was not ready within {READY_SECONDS:.0f} s")
