"""The registry's /metrics: latency by route template and status, pool usage, database errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.registry.config import RegistrySettings
from services.registry.main import create_app
from services.registry.models import Principal
from shared.metrics import UNMATCHED_ROUTE
from tests.observability.scrape import requests_seen, scrape
from tests.registry.conftest import TOKEN, Actor


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    settings = RegistrySettings(internal_token=TOKEN, database_url="unused://")
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


@pytest.fixture
def admin(client: TestClient, engine: Engine) -> Actor:
    with Session(engine) as session:
        principal = Principal(role="admin", name="metrics admin")
        session.add(principal)
        session.commit()
        return Actor(client, principal.id)


def test_requests_are_counted_by_route_template_and_status(
    client: TestClient, admin: Actor
) -> None:
    before = scrape(client)
    assert admin.get("/v1/firms/999999").status_code == 404
    assert admin.get("/v1/firms/999998").status_code == 404
    assert admin.get("/v1/firms/abc").status_code == 422
    assert client.get("/no/such/path/123").status_code == 404
    assert client.get("/healthz").status_code == 200
    after = scrape(client)

    def seen(route: str, status: int) -> float:
        return requests_seen(after, "registry", route, status) - requests_seen(
            before, "registry", route, status
        )

    # Two different firms, one series: the template, never the path.
    assert seen("/v1/firms/{firm_id}", 404) == 2
    assert seen("/v1/firms/{firm_id}", 422) == 1
    assert seen(UNMATCHED_ROUTE, 404) == 1
    assert seen("/healthz", 200) == 1
    routes = {
        labels["route"] for labels in after.labels("finmatch_http_request_duration_seconds_count")
    }
    assert not any("999999" in route or "/no/such" in route for route in routes)
    # The observations land in the buckets, and the sum is a time.
    labels = {"service": "registry", "route": "/healthz", "method": "GET", "status": "200"}
    assert after.value("finmatch_http_request_duration_seconds_bucket", le="+Inf", **labels) == (
        after.value("finmatch_http_request_duration_seconds_count", **labels)
    )
    assert 0 < after.value("finmatch_http_request_duration_seconds_sum", **labels) < 60


def test_an_unknown_method_is_one_label(client: TestClient) -> None:
    before = scrape(client)
    assert client.request("BREW", "/healthz").status_code == 405
    after = scrape(client)
    methods = {
        labels["method"] for labels in after.labels("finmatch_http_request_duration_seconds_count")
    }
    assert "BREW" not in methods
    assert requests_seen(after, "registry", "/healthz", 405, method="other") == (
        requests_seen(before, "registry", "/healthz", 405, method="other") + 1
    )


def test_pool_usage_is_read_at_scrape_time(client: TestClient, engine: Engine) -> None:
    idle = scrape(client)
    assert idle.value("finmatch_db_pool_info", dialect=engine.dialect.name, pool="QueuePool") == 1
    assert idle.value("finmatch_db_pool_size") == engine.pool.size()  # type: ignore[attr-defined]
    with engine.connect() as first, engine.connect() as second:
        first.execute(sa.text("SELECT 1"))
        second.execute(sa.text("SELECT 1"))
        busy = scrape(client)
    assert (
        busy.value("finmatch_db_pool_checked_out") == idle.value("finmatch_db_pool_checked_out") + 2
    )
    assert scrape(client).value("finmatch_db_pool_checked_out") == idle.value(
        "finmatch_db_pool_checked_out"
    )
    assert busy.value("finmatch_db_pool_overflow") >= 0
    assert busy.value("finmatch_db_pool_idle") >= 0


def test_an_engine_without_counts_reports_its_kind_only(engine: Engine) -> None:
    memory = sa.create_engine("sqlite://")  # SingletonThreadPool: no checked-out count
    settings = RegistrySettings(internal_token=TOKEN, database_url="unused://")
    client = TestClient(create_app(settings, memory))
    scraped = scrape(client)
    assert scraped.value("finmatch_db_pool_info", dialect="sqlite", pool="SingletonThreadPool") == 1
    assert not scraped.has("finmatch_db_pool_checked_out")
    memory.dispose()


def test_database_errors_are_counted(client: TestClient, engine: Engine, admin: Actor) -> None:
    before = scrape(client)
    with pytest.raises(sa.exc.DBAPIError), engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table"))
    with Session(engine) as session:
        session.add(Principal(id=admin.id, role="admin", name="the same id again"))
        with pytest.raises(sa.exc.IntegrityError):
            session.commit()
    after = scrape(client)

    def new(**labels: str) -> float:
        name = "finmatch_db_errors_total"
        return after.value(name, **labels) - before.value(name, **labels)

    assert new(operation="select") == 1
    assert new(operation="insert", error="IntegrityError") == 1
