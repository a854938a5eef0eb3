"""The gateway's /metrics over the in-process stack: routes, matches, cache, breakers, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from services.gateway.clients import CircuitBreaker, DownstreamClient
from services.gateway.metrics import GatewayCollector
from shared.metrics import UNMATCHED_ROUTE, mount_metrics
from tests.gateway.conftest import Stack, matching_app, registry_app, running_stack
from tests.observability.data import seed
from tests.observability.scrape import Scrape, requests_seen, scrape
from tests.services import need_redis

CLOSED = "http://127.0.0.1:1"  # nothing listens on port 1: connections are refused at once
MATCHES = "/v1/firms/{firm_id}/matches"


def delta(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
def stack(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Stack]:
    redis_url = need_redis() if request.param == "redis" else None
    with running_stack(engine, redis_url=redis_url) as running:
        yield running


def test_matches_fresh_then_cached(stack: Stack) -> None:
    portal, firm_id = seed(stack)
    backend = "redis" if stack.client.app.state.settings.redis_url else "local"  # type: ignore[attr-defined]
    before = scrape(stack.client)
    first = portal.get(f"/v1/firms/{firm_id}/matches")
    assert first.status_code == 200, first.text
    assert first.json()["degraded"] is False
    second = portal.get(f"/v1/firms/{firm_id}/matches")
    assert second.content == first.content
    after = scrape(stack.client)

    served = "finmatch_gateway_matches_served_total"
    assert delta(after, before, served, outcome="fresh") == 1
    assert delta(after, before, served, outcome="cached") == 1
    assert delta(after, before, served, outcome="stale") == 0
    assert delta(after, before, served, outcome="unavailable") == 0
    assert (
        requests_seen(after, "gateway", MATCHES, 200)
        - requests_seen(before, "gateway", MATCHES, 200)
        == 2
    )
    # The first request missed the match cache, the second hit it.
    match_cache = {"namespace": "match", "backend": backend}
    assert delta(after, before, "finmatch_cache_misses_total", **match_cache) == 1
    assert delta(after, before, "finmatch_cache_hits_total", **match_cache) == 1
    # One firm ranked by the matching service (in this process): three products checked, the
    # two eligible ones scored.
    assert delta(after, before, "finmatch_matching_rank_requests_total", scorer="prior") == 1
    assert delta(after, before, "finmatch_matching_pairs_evaluated_total") == 3
    assert delta(after, before, "finmatch_matching_pairs_scored_total") == 2
    assert "hits_total[5m]" in after.help["finmatch_cache_hits"]  # the ratio's query


def test_routes_are_templates_and_404s_are_bounded(stack: Stack) -> None:
    portal, firm_id = seed(stack)
    before = scrape(stack.client)
    assert portal.get(f"/v1/firms/{firm_id + 1000}/matches").status_code == 404
    assert portal.get("/v1/firms/777/matches").status_code == 404
    assert portal.get(f"/v1/no-such-thing/{firm_id}").status_code == 404
    assert stack.client.get("/v1/firms/1/matches").status_code == 401  # no key
    after = scrape(stack.client)

    def seen(route: str, status: int) -> float:
        return requests_seen(after, "gateway", route, status) - requests_seen(
            before, "gateway", route, status
        )

    assert seen(MATCHES, 404) == 2
    assert seen(MATCHES, 401) == 1
    assert seen(UNMATCHED_ROUTE, 404) == 1
    for labels in after.labels("finmatch_http_request_duration_seconds_count"):
        assert "no-such-thing" not in labels["route"]
        assert "777" not in labels["route"]


def test_a_429_is_counted_by_role(engine: Engine) -> None:
    with running_stack(engine, rate_limit_portal=2) as stack:
        portal = stack.principal("portal")
        before = scrape(stack.client)
        assert [portal.get("/v1/firms").status_code for _ in range(3)] == [200, 200, 429]
        after = scrape(stack.client)
    rejections = "finmatch_gateway_rate_limit_rejections_total"
    assert delta(after, before, rejections, role="portal") == 1
    assert delta(after, before, rejections, role="admin") == 0
    assert (
        requests_seen(after, "gateway", "/v1/firms", 429)
        - requests_seen(before, "gateway", "/v1/firms", 429)
        == 1
    )


def transitions(downstream: str, from_state: str, to_state: str) -> float:
    labels = {"downstream": downstream, "from_state": from_state, "to_state": to_state}
    value = REGISTRY.get_sample_value("finmatch_circuit_breaker_transitions_total", labels)
    return value or 0.0


def test_a_stopped_matching_service_opens_its_breaker(engine: Engine) -> None:
    opened_before = transitions("matching", "closed", "open")
    with running_stack(
        engine,
        matching_url=CLOSED,
        matching_transport=httpx.AsyncHTTPTransport(),  # a real socket to a closed port
        breaker_failures=1,
        breaker_reset_seconds=60,  # stays open for the whole test
    ) as stack:
        portal, firm_id = seed(stack)
        before = scrape(stack.client)
        for _ in range(2):
            answer = portal.get(f"/v1/firms/{firm_id}/matches")
            # Never answered before: nothing to serve stale, and the gateway ranks nothing.
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["retry-after"]) >= 1
        after = scrape(stack.client)

    state = "finmatch_circuit_breaker_state"
    assert after.value(state, downstream="matching") == 2
    assert after.value(state, downstream="registry") == 0
    assert after.has(state, downstream="registry")
    assert transitions("matching", "closed", "open") - opened_before == 1
    served = "finmatch_gateway_matches_served_total"
    assert delta(after, before, served, outcome="unavailable") == 2
    assert delta(after, before, served, outcome="fresh") == 0


def test_breaker_states_and_transitions() -> None:
    now = [0.0]
    breaker = CircuitBreaker(1, 10, clock=lambda: now[0])
    client = DownstreamClient("observed", "http://observed", "token", timeout=1, breaker=breaker)
    gateway = FastAPI()
    gateway.state.matching = client  # where the collector looks for the gateway's clients
    mount_metrics(gateway, "test", GatewayCollector(gateway))
    app = TestClient(gateway)

    def state() -> float:
        return scrape(app).value("finmatch_circuit_breaker_state", downstream="observed")

    assert state() == 0
    breaker.record_failure()
    assert state() == 2
    now[0] = 11.0  # the pause is over: the next call would be the trial
    assert state() == 1
    assert breaker.allow()
    breaker.record_success()
    assert state() == 0
    for moved in (("closed", "open"), ("open", "half_open"), ("half_open", "closed")):
        assert transitions("observed", *moved) == 1
    asyncio.run(client.aclose())


def test_the_model_version_each_service_serves(engine: Engine) -> None:
    with running_stack(engine) as stack:
        deadline = time.monotonic() + 10
        while True:  # the gateway asks the matching service in the background at start-up
            scraped = scrape(stack.client)
            if scraped.has("finmatch_gateway_model_info", version="prior-v1"):
                break
            assert time.monotonic() < deadline, scraped.labels("finmatch_gateway_model_info")
            time.sleep(0.05)
    assert scraped.labels("finmatch_gateway_model_info") == [{"version": "prior-v1"}]

    matching, _manager = matching_app(httpx.ASGITransport(app=registry_app(engine)))
    client = TestClient(matching)
    assert client.get("/healthz").status_code == 200
    scraped = scrape(client)
    assert scraped.value("finmatch_matching_model_info", version="prior-v1", is_prior="true") == 1
    assert scraped.value("finmatch_matching_model_error") == 0
    assert requests_seen(scraped, "matching", "/healthz", 200) >= 1
