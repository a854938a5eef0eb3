"""The registry while its PostgreSQL is unreachable: a quick 503 database_unavailable with
Retry-After, /readyz red then green, and recovery within seconds of the database's return.

The database goes away behind a TCP proxy (tests.tcp_proxy); the shared server is never
touched."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from services.registry.config import RegistrySettings
from services.registry.main import create_app
from services.registry.models import Firm, Principal
from services.registry.outage import is_unavailable
from tests.conftest import _wipe
from tests.registry import data
from tests.registry.conftest import TOKEN, Actor, make_principal
from tests.tcp_proxy import ThreadedProxy

# Every answer during the outage comes within this (the connect timeout is 2 s).
ANSWER_BOUND = 4.0
RECOVERY_BOUND = 5.0


@pytest.fixture
def proxy(postgres_engine: Engine) -> Iterator[ThreadedProxy]:
    _wipe(postgres_engine)
    url = postgres_engine.url.render_as_string(hide_password=False)
    with ThreadedProxy.to_url(url, 5432) as running:
        yield running


@pytest.fixture
def client(proxy: ThreadedProxy, postgres_engine: Engine) -> Iterator[TestClient]:
    url = postgres_engine.url.render_as_string(hide_password=False)
    settings = RegistrySettings(
        internal_token=TOKEN,
        database_url=proxy.proxied(url),
        db_connect_timeout_seconds=2,
        db_pool_timeout_seconds=1.0,
        db_retry_after_seconds=2,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def admin(client: TestClient, postgres_engine: Engine) -> Actor:
    with Session(postgres_engine) as session:
        principal = Principal(role="admin", name="test admin")
        session.add(principal)
        session.commit()
        return Actor(client, principal.id)


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def assert_unavailable(answer: httpx.Response, took: float) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "database_unavailable"
    assert answer.headers["retry-after"] == "2"
    assert took < ANSWER_BOUND


def poll_until_ok(call: Callable[[], httpx.Response], deadline: float) -> httpx.Response:
    while True:
        answer = call()
        if answer.status_code < 500 or time.monotonic() >= deadline:
            return answer
        time.sleep(0.05)


def firms_with_code(engine: Engine, credit_code: str) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count()).select_from(Firm).where(Firm.credit_code == credit_code)
        ).one()


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["refused", "hung"])
def test_database_outage_answers_503_quickly_and_recovers(
    how: str,
    proxy: ThreadedProxy,
    client: TestClient,
    admin: Actor,
    postgres_engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    portal = make_principal(admin, "portal")
    city = make_principal(admin, "official")
    created = portal.post("/v1/firms", json=data.firm(1))
    assert created.status_code == 201, created.text
    firm_id = created.json()["id"]
    assert portal.get(f"/v1/firms/{firm_id}").status_code == 200
    assert client.get("/readyz").status_code == 200

    proxy.stop(reset=True)  # PostgreSQL is gone: every pooled connection with it
    if how == "hung":  # a host that accepts connections and never answers
        proxy.proxy.hang = True
        proxy.start()
    caplog.set_level(logging.INFO)
    caplog.clear()
    assert_unavailable(*timed(lambda: portal.get(f"/v1/firms/{firm_id}")))
    assert_unavailable(*timed(lambda: portal.post("/v1/firms", json=data.firm(2))))
    assert_unavailable(*timed(lambda: city.get("/v1/stats/overview")))
    assert_unavailable(*timed(lambda: portal.get("/v1/firms")))
    ready, took = timed(lambda: client.get("/readyz"))
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "down"
    assert took < ANSWER_BOUND
    # One clear warning for the outage, no traceback per request.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == []
    outage = [r for r in caplog.records if r.name == "finmatch.registry.database"]
    caplog.clear()
    assert [r.levelno for r in outage] == [logging.WARNING], [r.getMessage() for r in outage]
    assert "database unavailable" in outage[0].getMessage()

    if how == "hung":
        proxy.stop()
        proxy.proxy.hang = False
    proxy.start()
    deadline = time.monotonic() + RECOVERY_BOUND
    answer = poll_until_ok(lambda: portal.get(f"/v1/firms/{firm_id}"), deadline)
    assert answer.status_code == 200, answer.text
    assert client.get("/readyz").status_code == 200
    # The write refused during the outage left nothing behind; sent again, it is written once.
    assert firms_with_code(postgres_engine, data.firm(2)["credit_code"]) == 0
    again = portal.post("/v1/firms", json=data.firm(2))
    assert again.status_code == 201, again.text
    assert firms_with_code(postgres_engine, data.firm(2)["credit_code"]) == 1
    assert city.get("/v1/stats/overview").status_code == 200
    assert any("database reachable again" in r.getMessage() for r in caplog.records)


@pytest.mark.postgres
def test_the_first_request_after_a_restart_succeeds(
    proxy: ThreadedProxy, client: TestClient, admin: Actor
) -> None:
    """A restart while the registry is idle: its pooled connections are dead, and it must
    notice that before a request uses one, not answer the request with the error."""
    portal = make_principal(admin, "portal")
    firm_id = portal.post("/v1/firms", json=data.firm(1)).json()["id"]
    assert portal.get(f"/v1/firms/{firm_id}").status_code == 200
    assert portal.get("/v1/firms").status_code == 200

    proxy.stop(reset=True)
    proxy.start()
    assert portal.get(f"/v1/firms/{firm_id}").status_code == 200
    assert portal.get("/v1/firms").status_code == 200
    assert portal.post("/v1/firms", json=data.firm(3)).status_code == 201


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (psycopg.OperationalError("connection failed: Connection refused"), True),
        (psycopg.errors.AdminShutdown(), True),  # 57P01: the server is shutting down
        (psycopg.errors.CannotConnectNow(), True),  # 57P03: it is starting up
        (psycopg.errors.ConnectionFailure(), True),  # class 08
        (psycopg.errors.TooManyConnections(), True),
        (psycopg.InterfaceError("the connection is closed"), True),
        (sa.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"), True),
        # A statement's own failure is not an outage: it keeps its own answer.
        (psycopg.errors.SerializationFailure(), False),
        (psycopg.errors.QueryCanceled(), False),
        (psycopg.errors.UniqueViolation(), False),
        (ValueError("not a database error"), False),
    ],
)
def test_which_errors_mean_the_database_is_unavailable(error: Exception, unavailable: bool) -> None:
    assert is_unavailable(error) is unavailable
    if isinstance(error, psycopg.Error):  # as SQLAlchemy raises it
        wrapped = sa.exc.OperationalError("SELECT 1", {}, error)
        assert is_unavailable(wrapped) is unavailable
