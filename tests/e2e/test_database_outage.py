"""PostgreSQL goes away under the running services (a TCP proxy between the registry and the
database is cut, then restored): quick 503s with Retry-After, the owner's earlier read served
stale, readiness red then green, the first fresh answer within 5 s, and every acknowledged
write present exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from services.registry.db import make_engine
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import cluster_of
from tests.registry import data
from tests.tcp_proxy import ThreadedProxy

ANSWER_BOUND = 4.0  # the registry's connect timeout is 2 s
RECOVERY_BOUND = 5.0


@pytest.fixture
def outage_cluster(tmp_path: Path) -> Iterator[tuple[Cluster, ThreadedProxy, str]]:
    with cluster_of("outage", log_dir=tmp_path) as cluster:
        direct = cluster.database_url
        with ThreadedProxy.to_url(direct, 5432) as proxy:
            cluster.database_url = proxy.proxied(direct)  # the services' only way there
            cluster.start_registry()
            matching = cluster.start_matching()
            gateway = cluster.start_gateway(matching)
            matching.wait_ready()
            gateway.wait_ready()
            yield cluster, proxy, direct


def firm_count(database_url: str, credit_code: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            statement = sa.text("SELECT count(*) FROM firm WHERE credit_code = :code")
            return int(conn.execute(statement, {"code": credit_code}).scalar_one())
    finally:
        engine.dispose()


def test_postgres_outage_and_return(outage_cluster: tuple[Cluster, ThreadedProxy, str]) -> None:
    cluster, proxy, direct = outage_cluster
    gateway = cluster.services["gateway"].url
    registry = cluster.services["registry"].url
    admin = httpx.Client(
        base_url=gateway, headers={"Authorization": f"Bearer {cluster.admin_key}"}, timeout=30
    )
    made = admin.post("/v1/admin/principals", json={"role": "portal", "name": "门户"})
    assert made.status_code == 201, made.text
    key = admin.post("/v1/admin/keys", json={"principal_id": made.json()["id"]}).json()["key"]
    portal = httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    acknowledged: set[int] = set()
    refused: set[int] = set()

    def write(seq: int) -> httpx.Response:
        answer = portal.post(
            "/v1/firms", json=data.firm(seq), headers={"Idempotency-Key": f"firm-{seq}"}
        )
        (acknowledged if answer.status_code == 201 else refused).add(seq)
        return answer

    firm_id = write(1).json()["id"]
    firm = portal.get(f"/v1/firms/{firm_id}")
    assert firm.status_code == 200
    write(2)

    proxy.stop(reset=True)
    for seq in (3, 4, 5):
        started = time.monotonic()
        answer = write(seq)
        assert time.monotonic() - started < ANSWER_BOUND
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "database_unavailable"
        assert int(answer.headers["retry-after"]) >= 1
    stale = portal.get(f"/v1/firms/{firm_id}")
    assert stale.status_code == 200
    assert stale.headers["x-finmatch-stale"] == "database_unavailable"
    assert stale.json() == firm.json()
    assert httpx.get(f"{registry}/readyz", timeout=ANSWER_BOUND).status_code == 503

    proxy.start()
    restored = time.monotonic()
    while True:
        fresh = portal.get(f"/v1/firms/{firm_id}")
        if "x-finmatch-stale" not in fresh.headers or time.monotonic() - restored > 10:
            break
        time.sleep(0.05)
    assert fresh.status_code == 200
    assert time.monotonic() - restored < RECOVERY_BOUND, "no fresh answer within 5 s"
    assert httpx.get(f"{registry}/readyz", timeout=5).status_code == 200
    write(6)

    for seq in sorted(refused):  # the refused writes, sent again with their keys
        assert write(seq).status_code == 201
    assert acknowledged == {1, 2, 3, 4, 5, 6}
    for seq in sorted(acknowledged):
        assert firm_count(direct, data.firm(seq)["credit_code"]) == 1

    log = cluster.services["registry"].log()
    assert log.count("database unavailable") == 1, log
    assert "Traceback" not in log
    assert "database reachable again" in log
