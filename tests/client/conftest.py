"""The live stack the client's tests talk to: registry, matching, gateway and the webhook
dispatcher as real processes (tests/e2e/cluster.py), on PostgreSQL and Redis; and the
principals of one small world, each with a client of its own.

The gateway's rate limit for officials is lowered (3 requests per 2 s per key) so that a
test can meet a real 429; the tests that want no 429 act as another role.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from finmatch_client import FinmatchClient, RetryPolicy
from finmatch_client.models import (
    FirmCreate,
    FirmPublic,
    InstitutionCreate,
    KeyCreate,
    PrincipalCreate,
    ProductCreate,
    ProductPublic,
)
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import cluster_of
from tests.registry import data

OFFICIAL_LIMIT = 3
RATE_WINDOW_SECONDS = 2
TANGXIA = "441900116"  # 塘厦镇
# Credit codes of these tests' firms, clear of the other suites' and of the seeded ones.
_SEQ = itertools.count(70_000_000)
# Quick retries: the tests wait for real 429s and 503s, not for default back-offs.
FAST = RetryPolicy(max_retries=6, backoff_base=0.2, backoff_max=2.0, retry_after_max=30.0)


@dataclass
class Attempt:
    """One request as it went on the wire, and its status (None: no answer)."""

    method: str
    path: str
    idempotency_key: str | None
    status: int | None = None


@dataclass
class Recorder:
    """httpx event hooks that record every attempt a client makes, retries included."""

    attempts: list[Attempt] = field(default_factory=list)

    def on_request(self, request: httpx.Request) -> None:
        key = request.headers.get("idempotency-key")
        self.attempts.append(Attempt(request.method, request.url.path, key))

    def on_response(self, response: httpx.Response) -> None:
        self.attempts[-1].status = response.status_code

    def http(self, timeout: float = 60.0) -> httpx.Client:
        hooks: dict[str, list[Any]] = {
            "request": [self.on_request],
            "response": [self.on_response],
        }
        return httpx.Client(timeout=timeout, event_hooks=hooks)


@dataclass
class World:
    cluster: Cluster
    url: str
    admin: FinmatchClient
    bank: FinmatchClient
    portal: FinmatchClient
    other_portal: FinmatchClient
    official: FinmatchClient
    institution_id: int
    keys: dict[str, str] = field(default_factory=dict)
    clients: list[FinmatchClient] = field(default_factory=list)

    def client(self, role: str, **options: Any) -> FinmatchClient:
        """Another client with the key of ``role`` (and its own options)."""
        return self.client_with_key(self.keys[role], **options)

    def client_with_key(self, key: str, **options: Any) -> FinmatchClient:
        made = FinmatchClient(self.url, key, **options)
        self.clients.append(made)
        return made


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_of("client", log_dir=tmp_path_factory.mktemp("client-logs")) as running:
        running.start_registry()
        matching = running.start_matching()
        gateway = running.start_gateway(
            matching,
            FINMATCH_RATE_LIMIT_OFFICIAL=str(OFFICIAL_LIMIT),
            FINMATCH_RATE_LIMIT_WINDOW_SECONDS=str(RATE_WINDOW_SECONDS),
        )
        dispatcher = running.start_dispatcher(matching)
        matching.wait_ready()
        gateway.wait_ready()
        dispatcher.wait_ready()
        yield running


@pytest.fixture(scope="session")
def world(stack: Cluster) -> Iterator[World]:
    url = stack.services["gateway"].url
    admin = FinmatchClient(url, stack.admin_key, retry=FAST)
    institution = admin.admin.create_institution(
        InstitutionCreate(name="客户端测试银行", kind="bank")
    )
    keys = {"admin": stack.admin_key}
    for name, role, label, scope in (
        ("bank", "institution", "客户端测试信贷部", {"institution_id": institution.id}),
        ("portal", "portal", "客户端测试门户", {}),
        ("other_portal", "portal", "另一门户", {}),
        ("official", "official", "塘厦镇金融办", {"town_code": TANGXIA}),
        ("rate_limited", "official", "塘厦镇金融办（限流测试）", {"town_code": TANGXIA}),
    ):
        principal = admin.admin.create_principal(PrincipalCreate(role=role, name=label, **scope))
        keys[name] = admin.admin.create_key(KeyCreate(principal_id=principal.id)).key
    made = World(
        cluster=stack,
        url=url,
        admin=admin,
        bank=FinmatchClient(url, keys["bank"], retry=FAST),
        portal=FinmatchClient(url, keys["portal"], retry=FAST),
        other_portal=FinmatchClient(url, keys["other_portal"], retry=FAST),
        official=FinmatchClient(url, keys["official"], retry=FAST),
        institution_id=institution.id,
        keys=keys,
    )
    yield made
    for client in (made.admin, made.bank, made.portal, made.other_portal, made.official):
        client.close()
    for client in made.clients:
        client.close()


def new_firm(**overrides: Any) -> FirmCreate:
    """A valid firm of 塘厦镇 with a need, under a credit code no other test uses."""
    return FirmCreate.model_validate(data.firm(next(_SEQ), **overrides))


def new_product(**overrides: Any) -> ProductCreate:
    return ProductCreate.model_validate(data.product(**overrides))


def unknown_fields(value: Any, where: str = "") -> list[str]:
    """Fields of an answer that its model does not declare: each one is a field the API
    added and the client's models lack (the models are lenient on purpose; the tests not)."""
    found: list[str] = []
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += unknown_fields(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += unknown_fields(item, f"{where}.{key}")
    elif isinstance(value, BaseModel):
        found += [f"{where}.{name}" for name in value.model_extra or {}]
        for name in type(value).model_fields:
            found += unknown_fields(getattr(value, name), f"{where}.{name}")
    return found


def firm_and_product(world: World) -> tuple[FirmPublic, ProductPublic]:
    """A fresh firm of the portal and a fresh product of the bank that the firm qualifies for."""
    product = world.bank.products.create(new_product(name="客户端测试知识产权贷"))
    firm = world.portal.firms.create(new_firm())
    return firm, product
