"""The public API while the registry's PostgreSQL is unreachable (cut behind a TCP proxy):
503 database_unavailable passed through with Retry-After, the owner's earlier reads served
stale, writes never from a copy, and the first fresh answer within seconds of the return."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from services.registry.db import make_engine
from services.registry.models import Firm
from tests.gateway.conftest import Stack, own_database, running_stack
from tests.gateway.test_degradation import seed_products_and_firm
from tests.registry import data
from tests.tcp_proxy import ThreadedProxy

pytestmark = pytest.mark.postgres

ANSWER_BOUND = 4.0  # the registry's connect timeout is 2 s
RECOVERY_BOUND = 5.0


@pytest.fixture
def direct(tmp_path: Path) -> Iterator[Engine]:
    with own_database("postgres", tmp_path) as engine:
        yield engine


@pytest.fixture
def proxy(direct: Engine) -> Iterator[ThreadedProxy]:
    with ThreadedProxy.to_url(direct.url.render_as_string(hide_password=False), 5432) as running:
        yield running


@pytest.fixture
def stack(direct: Engine, proxy: ThreadedProxy) -> Iterator[Stack]:
    """The registry reaches its database through the proxy only."""
    url = proxy.proxied(direct.url.render_as_string(hide_password=False))
    engine = make_engine(url, connect_timeout_seconds=2, pool_timeout_seconds=1.0)
    try:
        with running_stack(engine) as running:
            yield running
    finally:
        engine.dispose()


def timed(call: Callable[[], httpx.Response]) -> httpx.Response:
    started = time.monotonic()
    answer = call()
    assert time.monotonic() - started < ANSWER_BOUND, answer.text
    return answer


def assert_database_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "database_unavailable"
    assert answer.headers["retry-after"] == "2"
    assert "x-finmatch-stale" not in answer.headers


def firms_with_code(engine: Engine, credit_code: str) -> int:
    with Session(engine) as session:
        statement = select(func.count()).select_from(Firm).where(Firm.credit_code == credit_code)
        return session.exec(statement).one()


def test_database_outage_through_the_gateway(
    stack: Stack, proxy: ThreadedProxy, direct: Engine
) -> None:
    portal, firm_id, _ranked = seed_products_and_firm(stack)
    other_portal = stack.principal("portal")
    city = stack.principal("official")
    firm = portal.get(f"/v1/firms/{firm_id}")
    assert firm.status_code == 200
    matches = portal.get(f"/v1/firms/{firm_id}/matches")
    assert matches.status_code == 200
    assert other_portal.get(f"/v1/firms/{firm_id}").status_code == 404
    assert city.get("/v1/reference/towns").status_code == 200  # its key is known now
    before = portal.post("/v1/firms", json=data.firm(2), headers={"Idempotency-Key": "k-2"})
    assert before.status_code == 201  # acknowledged at the edge of the outage

    proxy.stop(reset=True)
    # Reads the owner made before: the last copy, marked stale.
    stale = timed(lambda: portal.get(f"/v1/firms/{firm_id}"))
    assert stale.status_code == 200, stale.text
    assert stale.json() == firm.json()
    assert stale.headers["x-finmatch-stale"] == "database_unavailable"
    assert int(stale.headers["age"]) >= 0
    assert stale.headers["etag"] == firm.headers["etag"]
    stale_matches = timed(lambda: portal.get(f"/v1/firms/{firm_id}/matches"))
    assert stale_matches.status_code == 200, stale_matches.text
    assert stale_matches.json()["stale"] is True
    assert stale_matches.json()["ranked"] == matches.json()["ranked"]
    assert stale_matches.headers["x-finmatch-stale"] == "database_unavailable"
    # Nothing held for that query, or for that principal: the registry's 503 passed on.
    assert_database_unavailable(timed(lambda: portal.get(f"/v1/firms/{firm_id}/matches?limit=3")))
    assert_database_unavailable(timed(lambda: other_portal.get(f"/v1/firms/{firm_id}")))
    assert_database_unavailable(timed(lambda: city.get("/v1/stats/overview")))
    # Writes never come from a copy.
    write = {"json": data.firm(3), "headers": {"Idempotency-Key": "k-3"}}
    assert_database_unavailable(timed(lambda: portal.post("/v1/firms", **write)))
    patch = {"json": {"employees": 46}, "headers": {"If-Match": firm.headers["etag"]}}
    assert_database_unavailable(timed(lambda: portal.patch(f"/v1/firms/{firm_id}", **patch)))
    registry = stack.client.app.state.registry  # type: ignore[attr-defined]
    assert registry.breaker_state == "closed"  # it answered every time, at once
    assert stack.client.get("/readyz").status_code == 503

    proxy.start()
    deadline = time.monotonic() + RECOVERY_BOUND
    while True:
        fresh = portal.get(f"/v1/firms/{firm_id}")
        if "x-finmatch-stale" not in fresh.headers or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert fresh.status_code == 200
    assert "x-finmatch-stale" not in fresh.headers, "no fresh answer within 5 s"
    assert portal.get(f"/v1/firms/{firm_id}/matches").json()["stale"] is False
    assert stack.client.get("/readyz").status_code == 200

    # The refused write left nothing; retried with its key, it is written once.
    assert firms_with_code(direct, data.firm(3)["credit_code"]) == 0
    for _ in range(2):
        again = portal.post("/v1/firms", **write)
        assert again.status_code == 201, again.text
    after = portal.post("/v1/firms", json=data.firm(4), headers={"Idempotency-Key": "k-4"})
    assert after.status_code == 201
    for seq in (1, 2, 3, 4):
        assert firms_with_code(direct, data.firm(seq)["credit_code"]) == 1


def test_an_erased_firm_is_never_served_stale(stack: Stack, proxy: ThreadedProxy) -> None:
    portal, firm_id, _ranked = seed_products_and_firm(stack)
    assert portal.get(f"/v1/firms/{firm_id}").status_code == 200
    assert portal.get(f"/v1/firms/{firm_id}/matches").status_code == 200
    assert portal.delete(f"/v1/firms/{firm_id}").status_code == 204

    proxy.stop()
    assert_database_unavailable(portal.get(f"/v1/firms/{firm_id}"))
    assert_database_unavailable(portal.get(f"/v1/firms/{firm_id}/matches"))
    proxy.start()
    assert portal.get(f"/v1/firms/{firm_id}").status_code == 404
