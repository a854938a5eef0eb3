"""Two gateway replicas over one registry while their Redis dies and comes back.

While Redis is down each replica keeps rate limits and idempotency keys in its own memory,
which cannot coordinate the two: the registry enforces the Idempotency-Key of a write in its
database, so a key sent to both replicas around the outage's edges makes one product at most,
and every answer for it is that product (or a plain 409/503). A Redis that returns is used
again within 5 s, found by the replicas' own requests, not by a readiness probe.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from services.registry.db import make_engine
from tests.e2e.cluster import Cluster, Service
from tests.e2e.conftest import cluster_of
from tests.registry import data
from tests.services import RedisProcess, redis_process

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REDIS_PREFIX = "finmatch-outage:"
FINE = {201, 409, 503}  # the same product, or a plain "not now"
RECOVERY_SECONDS = 5.0


@dataclass
class Outage:
    cluster: Cluster
    redis: RedisProcess
    replicas: list[Service]
    admin_key: str
    bank_key: str

    def client(self, replica: Service, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=replica.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    with (
        cluster_of("redis_outage", log_dir=tmp_path_factory.mktemp("e2e-logs")) as c,
        redis_process() as own_redis,
    ):
        c.start_registry()
        matching = c.start_matching()
        replicas = [
            c.start(
                name,
                "-m",
                "services.gateway.cli",
                port_variable="FINMATCH_GATEWAY_PORT",
                FINMATCH_MATCHING_URL=matching.url,
                FINMATCH_REDIS_URL=own_redis.url,  # the gateways' Redis, which this test kills
                FINMATCH_REDIS_PREFIX=REDIS_PREFIX,
            )
            for name in ("gateway-a", "gateway-b")
        ]
        for service in (matching, *replicas):
            service.wait_ready()
        admin = httpx.Client(
            base_url=replicas[0].url, headers={"Authorization": f"Bearer {c.admin_key}"}
        )
        with admin:
            bank = admin.post("/v1/admin/institutions", json={"name": "断线银行", "kind": "bank"})
            assert bank.status_code == 201, bank.text
            principal = admin.post(
                "/v1/admin/principals",
                json={"role": "institution", "name": "断线", "institution_id": bank.json()["id"]},
            )
            assert principal.status_code == 201, principal.text
            key = admin.post("/v1/admin/keys", json={"principal_id": principal.json()["id"]})
            assert key.status_code == 201, key.text
        yield Outage(c, own_redis, replicas, c.admin_key, key.json()["key"])


def products_named(cluster: Cluster, name: str) -> int:
    engine = make_engine(cluster.database_url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT count(*) FROM product WHERE name = :name")
            return int(conn.execute(query, {"name": name}).scalar_one())
    finally:
        engine.dispose()


def send_everywhere(
    outage: Outage, key: str, name: str, rounds: int = 2, also: Callable[[], None] | None = None
) -> list[httpx.Response]:
    """The same keyed product to both replicas at once, ``rounds`` times each (and ``also``
    alongside, e.g. killing Redis)."""

    def post(replica: Service) -> httpx.Response:
        with outage.client(replica, outage.bank_key) as client:
            return client.post(
                "/v1/products", json=data.product(name=name), headers={"Idempotency-Key": key}
            )

    with ThreadPoolExecutor(max_workers=2 * rounds + 1) as pool:
        futures = [pool.submit(post, r) for _ in range(rounds) for r in outage.replicas]
        if also is not None:
            pool.submit(also).result()
        return [f.result() for f in futures]


def assert_one_product(answers: list[httpx.Response]) -> int | None:
    assert {a.status_code for a in answers} <= FINE, [(a.status_code, a.text) for a in answers]
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) <= 1, ids
    return next(iter(ids), None)


def settle(outage: Outage, key: str, name: str, seen: int | None) -> int:
    """Retry the key on both replicas until it is answered with a product: always the same."""
    deadline = time.monotonic() + 20
    while True:
        answers = send_everywhere(outage, key, name, rounds=1)
        product_id = assert_one_product(answers)
        if seen is not None and product_id is not None:
            assert product_id == seen
        seen = seen if seen is not None else product_id
        if product_id is not None and all(a.status_code == 201 for a in answers):
            return product_id
        assert time.monotonic() < deadline, [a.text for a in answers]
        time.sleep(0.2)  # a 409/503 asks for a retry shortly


def redis_in_use_by_both(outage: Outage) -> bool:
    """Each replica counts its own principal's requests: both buckets in Redis means both use it."""
    clients = [
        outage.client(outage.replicas[0], outage.admin_key),
        outage.client(outage.replicas[1], outage.bank_key),
    ]
    for client in clients:
        with client:
            assert client.get("/v1/reference/towns").status_code == 200
    buckets = [k for k in outage.redis.stored_keys() if k.startswith(f"{REDIS_PREFIX}rl:".encode())]
    return len(buckets) >= 2


def test_one_key_makes_one_product_across_a_redis_outage(outage: Outage) -> None:
    names = {edge: f"断线-{edge}-{uuid.uuid4().hex[:8]}" for edge in ("before", "during", "after")}
    keys = {edge: f"outage-{edge}-{uuid.uuid4().hex}" for edge in names}

    # Just before Redis dies: the key reaches both replicas while Redis is killed.
    answers = send_everywhere(outage, keys["before"], names["before"], also=outage.redis.kill)
    before = assert_one_product(answers)

    # During the outage: each replica answers from its own memory, the registry from its table.
    during = assert_one_product(send_everywhere(outage, keys["during"], names["during"]))
    during = settle(outage, keys["during"], names["during"], during)
    before = settle(outage, keys["before"], names["before"], before)

    # Just after it returns (empty): the first requests may still fall back on either replica.
    outage.redis.start()
    returned = time.monotonic()
    after = assert_one_product(send_everywhere(outage, keys["after"], names["after"]))
    # A replica that no longer holds a key (Redis restarted empty) says the registry's answer
    # is a replay.
    with outage.client(outage.replicas[1], outage.bank_key) as client:
        again = client.post(
            "/v1/products",
            json=data.product(name=names["before"]),
            headers={"Idempotency-Key": keys["before"]},
        )
    assert (again.status_code, again.json()["id"]) == (201, before)
    assert again.headers["idempotent-replayed"] == "true"
    for edge, seen in (("before", before), ("during", during), ("after", after)):
        assert settle(outage, keys[edge], names[edge], seen) is not None
        assert products_named(outage.cluster, names[edge]) == 1

    # Redis is used again within 5 s of its return, by traffic alone.
    while not redis_in_use_by_both(outage):
        assert time.monotonic() - returned < RECOVERY_SECONDS, "Redis not used again in time"
        time.sleep(0.1)
    for replica in outage.replicas:
        ready = httpx.get(f"{replica.url}/readyz", timeout=5).json()
        assert ready["checks"]["redis"] == "ok"
