"""Registry test fixtures: the app on each backend and principals of every role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.registry.config import RegistrySettings
from services.registry.main import create_app
from services.registry.models import Principal

TOKEN = "test-internal-token"


class Actor:
    """A principal talking to the registry through its internal API."""

    def __init__(self, client: TestClient, principal_id: int | None) -> None:
        self.client = client
        self.id = principal_id

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"X-Internal-Token": TOKEN}
        if self.id is not None:
            headers["X-Principal-Id"] = str(self.id)
        return headers | (extra or {})

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = self.headers(kwargs.pop("headers", None))
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    settings = RegistrySettings(internal_token=TOKEN, database_url="unused://")
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


@pytest.fixture
def admin(client: TestClient, engine: Engine) -> Actor:
    with Session(engine) as session:
        principal = Principal(role="admin", name="test admin")
        session.add(principal)
        session.commit()
        return Actor(client, principal.id)


def make_principal(admin: Actor, role: str, **scope: Any) -> Actor:
    response = admin.post("/v1/principals", json={"role": role, "name": f"{role} x", **scope})
    assert response.status_code == 201, response.text
    return Actor(admin.client, response.json()["id"])


def make_institution(admin: Actor, name: str = "东莞测试银行", kind: str = "bank") -> int:
    response = admin.post("/v1/institutions", json={"name": name, "kind": kind})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.fixture
def portal(admin: Actor) -> Actor:
    return make_principal(admin, "portal")


@pytest.fixture
def other_portal(admin: Actor) -> Actor:
    return make_principal(admin, "portal")


@pytest.fixture
def bank(admin: Actor) -> Actor:
    return make_principal(admin, "institution", institution_id=make_institution(admin))


@pytest.fixture
def other_bank(admin: Actor) -> Actor:
    institution = make_institution(admin, "另一家银行")
    return make_principal(admin, "institution", institution_id=institution)
