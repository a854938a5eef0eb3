"""The gateway over a real registry and matching service, both in-process (ASGI transports)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.gateway.config import GatewaySettings
from services.gateway.main import create_app as create_gateway
from services.matching.lifecycle import ModelManager
from services.matching.main import create_app as create_matching
from services.matching.registry_client import RegistryClient as MatchingRegistryClient
from services.registry.config import RegistrySettings
from services.registry.main import create_app as create_registry
from shared.events import LocalEventBus
from tests.matching.conftest import matching_settings

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


def build_stack(engine: Engine, **gateway_overrides: Any) -> tuple[TestClient, Any]:
    registry = create_registry(
        RegistrySettings(internal_token=TOKEN, database_url="unused://"), engine
    )
    registry_transport = httpx.ASGITransport(app=registry)
    settings = matching_settings()
    manager = ModelManager(
        settings=settings,
        registry=MatchingRegistryClient("http://registry", TOKEN, transport=registry_transport),
        bus=LocalEventBus(),
    )
    matching = create_matching(settings, manager=manager)
    gateway = create_gateway(
        gateway_settings(**gateway_overrides),
        registry_transport=registry_transport,
        matching_transport=httpx.ASGITransport(app=matching),
    )
    return TestClient(gateway), manager


@pytest.fixture
def stack(engine: Engine) -> Iterator[Stack]:
    client, _manager = build_stack(engine)
    with client:
        yield Stack(client=client, admin=Api(client, BOOTSTRAP), engine=engine)
