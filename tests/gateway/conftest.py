"""The gateway over a real registry and matching service, both in-process (ASGI transports)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine, make_url

from services.gateway.config import GatewaySettings
from services.gateway.main import create_app as create_gateway
from services.matching.events import LocalEventBus
from services.matching.lifecycle import ModelManager
from services.matching.main import create_app as create_matching
from services.matching.registry_client import RegistryClient as MatchingRegistryClient
from services.registry.config import RegistrySettings
from services.registry.db import make_engine, normalize_url
from services.registry.main import create_app as create_registry
from services.registry.migrate import upgrade
from tests.conftest import _admin_execute, _database_name
from tests.gateway.redis_helpers import delete_keys, unique_prefix
from tests.matching.conftest import matching_settings
from tests.services import need_postgres, need_redis

TOKEN = "test-internal-token"
BOOTSTRAP = "bootstrap-admin-key-for-tests-0123456789abcdef"


class Api:
    """One API key talking to the gateway."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.key = key

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}"} | kwargs.pop("headers", {})
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


@dataclass
class Stack:
    client: TestClient
    admin: Api
    engine: Engine
    apis: dict[str, Api] = field(default_factory=dict)

    def principal(self, role: str, **scope: Any) -> Api:
        """A new principal of ``role`` with a fresh key."""
        created = self.admin.post(
            "/v1/admin/principals", json={"role": role, "name": f"{role} {len(self.apis)}", **scope}
        )
        assert created.status_code == 201, created.text
        key = self.admin.post("/v1/admin/keys", json={"principal_id": created.json()["id"]})
        assert key.status_code == 201, key.text
        api = Api(self.client, key.json()["key"])
        api.principal_id = created.json()["id"]  # type: ignore[attr-defined]
        self.apis[f"{role}-{len(self.apis)}"] = api
        return api

    def institution(self, name: str) -> Api:
        made = self.admin.post("/v1/admin/institutions", json={"name": name, "kind": "bank"})
        assert made.status_code == 201, made.text
        return self.principal("institution", institution_id=made.json()["id"])


def gateway_settings(**overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "internal_token": TOKEN,
        "bootstrap_admin_key": BOOTSTRAP,
        "redis_url": None,
        "breaker_reset_seconds": 0.2,
    }
    return GatewaySettings(**(values | overrides))


def registry_app(engine: Engine) -> FastAPI:
    return create_registry(RegistrySettings(internal_token=TOKEN, database_url="unused://"), engine)


def matching_app(
    to_registry: httpx.AsyncBaseTransport, **overrides: Any
) -> tuple[FastAPI, ModelManager]:
    settings = matching_settings(**overrides)
    manager = ModelManager(
        settings=settings,
        registry=MatchingRegistryClient("http://registry", TOKEN, transport=to_registry),
        bus=LocalEventBus(),
    )
    return create_matching(settings, manager=manager), manager


def build_stack(
    engine: Engine,
    *,
    registry_transport: httpx.AsyncBaseTransport | None = None,
    matching_transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    matching: dict[str, Any] | None = None,
    **gateway_overrides: Any,
) -> tuple[TestClient, Any]:
    """The gateway over an in-process registry and matching service.

    A transport given here replaces the gateway's route to that service (the matching
    service keeps its own route to the registry), e.g. one to a closed port. The clocks go to
    the gateway's create_app (a FakeClock lets a test move time instead of waiting).
    ``matching`` overrides the matching service's settings.
    """
    to_registry = httpx.ASGITransport(app=registry_app(engine))
    matching_service, manager = matching_app(to_registry, **(matching or {}))
    gateway = create_gateway(
        gateway_settings(**gateway_overrides),
        registry_transport=registry_transport or to_registry,
        matching_transport=matching_transport or httpx.ASGITransport(app=matching_service),
        clock=clock,
        wall_clock=wall_clock,
    )
    return TestClient(gateway), manager


@contextmanager
def running_stack(engine: Engine, **overrides: Any) -> Iterator[Stack]:
    """A started stack (see build_stack for the arguments).

    With a ``redis_url``, the gateway's keys get a prefix of their own (unless one is given)
    and are deleted afterwards: the Redis is shared with other tests and other runs, whose
    principal and firm ids are the same small numbers.
    """
    if overrides.get("redis_url") and "redis_prefix" not in overrides:
        overrides["redis_prefix"] = f"finmatch-test:{uuid.uuid4().hex}:"
    client, _manager = build_stack(engine, **overrides)
    try:
        with client:
            yield Stack(client=client, admin=Api(client, BOOTSTRAP), engine=engine)
    finally:
        if overrides.get("redis_url"):
            delete_keys(overrides["redis_url"], overrides["redis_prefix"])


@pytest.fixture
def stack(engine: Engine) -> Iterator[Stack]:
    with running_stack(engine) as running:
        yield running


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def own_database(backend: str, directory: Any) -> Iterator[Engine]:
    """A migrated database apart from the `engine` fixture's, for a world that several tests
    share (the `engine` fixture empties its database before every test)."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'shared.db'}"
        upgrade(url)
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    base_url = need_postgres()
    name = f"{_database_name()}_{uuid.uuid4().hex[:8]}"
    _admin_execute(base_url, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(normalize_url(base_url)).set(database=name).render_as_string(False)
        upgrade(url)
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
    finally:
        _admin_execute(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    return need_redis()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A key prefix of this test's own, with its keys deleted afterwards (Redis tests only)."""
    value = unique_prefix()
    yield value
    if request.node.get_closest_marker("redis"):
        delete_keys(need_redis(), value)
