"""Fixtures for the fault drills: PostgreSQL, Redis and the three services, all the drill's own.

Each drill gets a fresh set (it stops, kills and restarts them), with a pool of firms and
products to send traffic about. A failing drill's report carries every server's log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.drills.servers import PostgresServer, RedisServer, servers
from tests.drills.traffic import World
from tests.e2e.cluster import Cluster
from tests.registry import data

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

TANGXIA = "441900116"  # the official's town, and the pool firms'
POOL_FIRMS, POOL_PRODUCTS = 60, 3
# The traffic is one portal and one official: the drills are not about rate limits.
UNLIMITED = {
    f"FINMATCH_RATE_LIMIT_{role}": "1000000"
    for role in ("PORTAL", "INSTITUTION", "OFFICIAL", "ADMIN")
}


@dataclass
class Drill:
    cluster: Cluster
    postgres: PostgresServer
    redis: RedisServer
    database_url: str
    world: World

    @property
    def gateway(self) -> str:
        return self.cluster.services["gateway"].url

    def logs(self) -> str:
        return (
            f"{self.cluster.logs()}\n----- postgres -----\n{_tail(self.postgres.log())}"
            f"\n----- redis -----\n{_tail(self.redis.log())}"
        )


_RUNNING: list[Drill] = []


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _RUNNING:
        for drill in _RUNNING:
            report.sections.append(("drill: service logs", drill.logs()))


def _created(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 201, f"{answer.request.url}: {answer.status_code} {answer.text}"
    body: dict[str, Any] = answer.json()
    return body


def populate(gateway: str, admin_key: str) -> World:
    """Keys for a bank, a portal and an official; products; a pool of the portal's firms."""
    with httpx.Client(base_url=gateway, timeout=60) as http:
        admin = {"Authorization": f"Bearer {admin_key}"}

        def key_for(role: str, **scope: Any) -> str:
            who = _created(
                http.post(
                    "/v1/admin/principals",
                    headers=admin,
                    json={"role": role, "name": f"drill {role}", **scope},
                )
            )
            return str(
                _created(
                    http.post("/v1/admin/keys", headers=admin, json={"principal_id": who["id"]})
                )["key"]
            )

        bank_institution = _created(
            http.post(
                "/v1/admin/institutions", headers=admin, json={"name": "演练银行", "kind": "bank"}
            )
        )
        bank_key = key_for("institution", institution_id=bank_institution["id"])
        bank = {"Authorization": f"Bearer {bank_key}"}
        portal_key = key_for("portal")
        official_key = key_for("official", town_code=TANGXIA)
        products = [
            _created(http.post("/v1/products", headers=bank, json=data.product(name=f"演练贷{n}")))[
                "id"
            ]
            for n in range(POOL_PRODUCTS)
        ]
        portal = {"Authorization": f"Bearer {portal_key}"}
        lines = b"".join(orjson.dumps(data.firm(seq=n)) + b"\n" for n in range(1, POOL_FIRMS + 1))
        imported = http.post(
            "/v1/firms/bulk",
            params={"import_id": "drill-pool"},
            content=lines,
            headers=portal | {"Content-Type": "application/x-ndjson"},
        )
        assert imported.status_code == 200, imported.text
        listed = http.get("/v1/firms", params={"limit": 500}, headers=portal)
        assert listed.status_code == 200, listed.text
        firms = [firm["id"] for firm in listed.json()["data"]]
        assert len(firms) == POOL_FIRMS, listed.text
        ranked = http.get(f"/v1/firms/{firms[0]}/matches", headers=portal)
        assert ranked.status_code == 200, ranked.text
        assert not ranked.json()["degraded"], ranked.text
    return World(gateway, portal_key, official_key, firms, products)


@contextlib.contextmanager
def drill_cluster(log_dir: Path) -> Iterator[Drill]:
    with servers() as (postgres, redis_server):
        database_url = postgres.create_database("finmatch")
        cluster = Cluster(database_url=database_url, redis_url=redis_server.url, log_dir=log_dir)
        drill: Drill | None = None
        try:
            cluster.start_registry()
            matching = cluster.start_matching()
            # Matching ready first: a gateway that met it still starting would begin the drill
            # with its circuit breaker open.
            matching.wait_ready()
            gateway = cluster.start_gateway(matching, **UNLIMITED)
            gateway.wait_ready()
            drill = Drill(cluster, postgres, redis_server, database_url, World("", "", "", [], []))
            _RUNNING.append(drill)
            drill.world = populate(gateway.url, cluster.admin_key)
            yield drill
        finally:
            cluster.stop()
            if drill is not None:
                _RUNNING.remove(drill)


@pytest.fixture
def drill(tmp_path: Path) -> Iterator[Drill]:
    """A running system of the drill's own, with a pool of firms and products."""
    with drill_cluster(tmp_path) as running:
        yield running
