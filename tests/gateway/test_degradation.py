"""A dependency that is really down degrades the answer, not the service.

Redis down: served uncached, limits and idempotency keys in-process, /readyz 200 "degraded".
Matching down: a firm's last answer, marked ``stale`` with its age, else 503 with Retry-After
(the gateway ranks nothing); the breaker opens and the answer stays fast. Registry down: 503
with Retry-After, never 500; /readyz 503, /healthz 200. "Down" means a real socket that
nobody answers (a closed port) or a real redis-server process that this test stops, not a mock.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy.engine import Engine

from tests.gateway.conftest import Api, Stack, matching_app, registry_app, running_stack
from tests.gateway.redis_helpers import FakeClock
from tests.gateway.test_tenancy import ENDPOINTS, MATRIX, ROLES, World
from tests.polling import wait_until
from tests.registry import data
from tests.services import RedisProcess, need_redis
from tests.services import redis_process as own_redis

CLOSED = "http://127.0.0.1:1"  # nothing listens on port 1: connections are refused at once


class Counting(httpx.AsyncBaseTransport):
    """A real network transport that counts the connection attempts made through it."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def seed_products_and_firm(stack: Stack) -> tuple[Api, int, list[int]]:
    """Two eligible products (the cheaper ranks first), one near miss; one firm."""
    bank = stack.institution("银行")
    dear = bank.post("/v1/products", json=data.product(name="贵", rate_min_bp=450)).json()["id"]
    cheap = bank.post(
        "/v1/products", json=data.product(name="廉", rate_min_bp=300, rate_max_bp=350)
    ).json()["id"]
    bank.post("/v1/products", json=data.product(name="出口", min_export_usd=5_000_000))
    portal = stack.principal("portal")
    firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
    return portal, firm_id, [cheap, dear]


# Redis down ----------------------------------------------------------------------------------


def test_redis_on_a_closed_port(engine: Engine) -> None:
    with running_stack(engine, redis_url="redis://127.0.0.1:1/0", rate_limit_portal=8) as stack:
        ready = stack.client.get("/readyz")  # before any request touched Redis
        assert ready.status_code == 200
        assert ready.json()["checks"]["redis"] == "degraded: in-process fallback"

        started = time.monotonic()
        portal, firm_id, ranked = seed_products_and_firm(stack)
        matches = portal.get(f"/v1/firms/{firm_id}/matches")
        assert matches.status_code == 200, matches.text
        assert matches.json()["degraded"] is False  # Redis is a cache: the answer is whole
        assert [r["product_id"] for r in matches.json()["ranked"]] == ranked
        assert portal.get(f"/v1/firms/{firm_id}").status_code == 200
        assert time.monotonic() - started < 5  # no request waited for Redis

        # Idempotency keys in-process.
        body = data.firm(2)
        first = portal.post("/v1/firms", json=body, headers={"Idempotency-Key": "k"})
        again = portal.post("/v1/firms", json=body, headers={"Idempotency-Key": "k"})
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content

        # Rate limits in-process: 8 per window, 5 used so far.
        for remaining in (2, 1, 0):
            assert portal.get("/v1/firms").headers["ratelimit-remaining"] == str(remaining)
        refused = portal.get("/v1/firms")
        assert refused.status_code == 429
        assert "retry-after" in refused.headers

        assert stack.client.get("/readyz").json()["checks"]["redis"] == (
            "degraded: in-process fallback"
        )


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    with own_redis() as server:
        yield server


def test_redis_that_goes_away_and_comes_back(engine: Engine, redis_process: RedisProcess) -> None:
    with running_stack(engine, redis_url=redis_process.url, rate_limit_portal=1000) as stack:
        portal, firm_id, ranked = seed_products_and_firm(stack)
        assert stack.client.get("/readyz").json()["checks"]["redis"] == "ok"
        assert portal.get(f"/v1/firms/{firm_id}/matches").status_code == 200
        assert any(b":match:" in key for key in redis_process.stored_keys())  # cached in Redis

        redis_process.kill()
        ready = stack.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["redis"] == "degraded: in-process fallback"
        started = time.monotonic()
        during = portal.get(f"/v1/firms/{firm_id}/matches")
        assert during.status_code == 200
        assert [r["product_id"] for r in during.json()["ranked"]] == ranked
        # A change made during the outage is seen during the outage.
        patched = portal.patch(
            f"/v1/firms/{firm_id}", json={"invention_patents": 0, "utility_patents": 0},
            headers={"If-Match": '"1"'},
        )  # fmt: skip
        assert patched.status_code == 200, patched.text
        assert portal.get(f"/v1/firms/{firm_id}/matches").json()["ranked"] == []
        replayed = [
            portal.post("/v1/firms", json=data.firm(5), headers={"Idempotency-Key": "out"})
            for _ in range(2)
        ]
        assert [r.status_code for r in replayed] == [201, 201]
        assert replayed[1].headers["idempotent-replayed"] == "true"
        assert time.monotonic() - started < 5

        redis_process.start()  # empty: it kept nothing
        ready = stack.client.get("/readyz")
        assert ready.json()["checks"]["redis"] == "ok"
        after = portal.get(f"/v1/firms/{firm_id}/matches")
        assert after.status_code == 200
        assert after.json()["ranked"] == []  # the firm as it is now, not as it was cached
        assert any(b":match:" in key for key in redis_process.stored_keys())  # Redis in use again
        # The key claimed during the outage is still answered where it was claimed.
        again = portal.post("/v1/firms", json=data.firm(5), headers={"Idempotency-Key": "out"})
        assert again.headers["idempotent-replayed"] == "true"


def test_redis_that_hangs_then_resumes(engine: Engine, redis_process: RedisProcess) -> None:
    """A Redis that stops answering (SIGSTOP) keeps its data: what was invalidated during the
    outage must not come back from it when it resumes."""
    with running_stack(engine, redis_url=redis_process.url, rate_limit_portal=1000) as stack:
        portal, firm_id, ranked = seed_products_and_firm(stack)
        cached = portal.get(f"/v1/firms/{firm_id}/matches")
        assert [r["product_id"] for r in cached.json()["ranked"]] == ranked

        assert redis_process.process is not None
        redis_process.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            patched = portal.patch(
                f"/v1/firms/{firm_id}", json={"invention_patents": 0, "utility_patents": 0},
                headers={"If-Match": '"1"'},
            )  # fmt: skip
            assert patched.status_code == 200, patched.text
            during = portal.get(f"/v1/firms/{firm_id}/matches")
            assert during.json()["ranked"] == []
            assert time.monotonic() - started < 5  # short Redis timeouts, then the fallback
            ready = stack.client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"]["redis"] == "degraded: in-process fallback"
        finally:
            redis_process.process.send_signal(signal.SIGCONT)

        assert stack.client.get("/readyz").json()["checks"]["redis"] == "ok"
        after = portal.get(f"/v1/firms/{firm_id}/matches")
        assert after.status_code == 200
        assert after.json()["ranked"] == []  # not the answer Redis still holds from before


@pytest.mark.parametrize(("timeout", "waited_for"), [(5.0, True), (0.5, False)])
def test_redis_slower_than_its_timeout_counts_as_down(
    engine: Engine, redis_process: RedisProcess, timeout: float, waited_for: bool
) -> None:
    """FINMATCH_REDIS_TIMEOUT_SECONDS decides how long a pause of Redis (here 2.5 s, SIGSTOP then
    SIGCONT) is waited for: within it the answer is cached in Redis, beyond it the gateway
    falls back and caches it in its own memory."""
    pause = 2.5  # several 0.5 s timeouts (rate limit, cache read) within it
    with running_stack(
        engine, redis_url=redis_process.url, rate_limit_portal=1000, redis_timeout_seconds=timeout
    ) as stack:
        portal, firm_id, _ranked = seed_products_and_firm(stack)
        process = redis_process.process
        assert process is not None
        process.send_signal(signal.SIGSTOP)
        resume = threading.Timer(pause, process.send_signal, args=(signal.SIGCONT,))
        resume.start()
        try:
            started = time.monotonic()
            answer = portal.get(f"/v1/firms/{firm_id}/matches")
            elapsed = time.monotonic() - started
        finally:
            resume.join()
        assert answer.status_code == 200, answer.text
        cached_in_redis = any(b":match:" in key for key in redis_process.stored_keys())
        assert cached_in_redis is waited_for
        if waited_for:
            assert elapsed >= pause * 0.9
        else:
            assert elapsed < pause


# Matching down -------------------------------------------------------------------------------


# Matching is what fails in these tests, never Redis: a generous Redis timeout, so that a busy
# machine cannot push a cache write to the in-process fallback. With the default (0.5 s) a
# slow write of the last answer landed in the fallback, the FakeClock's jump ended the
# guard's backoff, and the next read went to a Redis that never held the answer: a 503.
HEALTHY_REDIS_TIMEOUT_SECONDS = 5.0


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
def cache_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param != "redis":
        return {}
    return {"redis_url": need_redis(), "redis_timeout_seconds": HEALTHY_REDIS_TIMEOUT_SECONDS}


def test_matching_down_serves_the_last_answer_stale(
    engine: Engine, cache_backend: dict[str, Any]
) -> None:
    matching, _manager = matching_app(httpx.ASGITransport(app=registry_app(engine)))
    switch = Switchable(httpx.ASGITransport(app=matching))
    clock = FakeClock(now=1_700_000_000.0)  # both clocks: in-process expiry and answer dates
    prefix = f"finmatch-test:{uuid.uuid4().hex}:"
    with running_stack(
        engine,
        matching_transport=switch,
        breaker_failures=100,  # the breaker is the next test's; here each call tries
        match_cache_seconds=0.05,  # the fresh answer is gone: only the last one is left
        clock=clock,
        wall_clock=clock,
        redis_prefix=prefix,
        **cache_backend,
    ) as stack:
        portal, firm_id, _ranked = seed_products_and_firm(stack)
        healthy = portal.get(f"/v1/firms/{firm_id}/matches")
        assert healthy.status_code == 200
        assert healthy.json()["stale"] is False
        assert "age" not in healthy.headers
        clock.advance(1.1)
        if cache_backend:  # Redis expires the fresh answer by its own clock, in 50 ms
            raw = redis.Redis.from_url(cache_backend["redis_url"])
            wait_until(lambda: not list(raw.scan_iter(match=f"{prefix}match:*")), timeout=5)
            raw.close()

        switch.down = True
        answer = portal.get(f"/v1/firms/{firm_id}/matches")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["stale"], body["degraded"]) == (True, True)
        assert body["stale_age_seconds"] >= 1
        assert answer.headers["age"] == str(body["stale_age_seconds"])
        assert "matching service unavailable" in body["degraded_reason"]
        assert f"{body['stale_age_seconds']} s old" in body["degraded_reason"]
        # The same answer, word for word, apart from the marks.
        marks = ("degraded", "degraded_reason", "stale", "stale_age_seconds")
        fresh = {k: v for k, v in healthy.json().items() if k not in marks}
        assert {k: v for k, v in body.items() if k not in marks} == fresh

        # Another query of the same firm was never answered: nothing to serve, 503.
        other = portal.get(f"/v1/firms/{firm_id}/matches", params={"limit": 1})
        assert other.status_code == 503
        assert other.headers["content-type"] == "application/problem+json"
        assert other.json()["code"] == "matching_unavailable"
        assert int(other.headers["retry-after"]) >= 1

        # Matching down changes no tenancy: the firm is read (and 404 for another portal)
        # before any stored answer is looked at.
        stranger = stack.principal("portal")
        assert stranger.get(f"/v1/firms/{firm_id}/matches").status_code == 404

        # When matching is back, the answer is fresh again (a stale one is never cached).
        switch.down = False
        back = portal.get(f"/v1/firms/{firm_id}/matches")
        assert back.status_code == 200
        assert back.json()["stale"] is False
        assert back.json()["ranked"] == healthy.json()["ranked"]


def test_a_stale_answer_is_only_ever_the_same_firms(engine: Engine) -> None:
    """An erased firm's last answer is never served to a firm registered after it, even under
    the same id (SQLite reuses the highest rowid once that row is deleted)."""
    matching, _manager = matching_app(httpx.ASGITransport(app=registry_app(engine)))
    switch = Switchable(httpx.ASGITransport(app=matching))
    with running_stack(engine, matching_transport=switch, breaker_failures=100) as stack:
        portal, firm_id, _ranked = seed_products_and_firm(stack)
        assert portal.get(f"/v1/firms/{firm_id}/matches").status_code == 200
        assert portal.delete(f"/v1/firms/{firm_id}").status_code == 204
        successor = portal.post("/v1/firms", json=data.firm(2, name="东莞市后来者有限公司"))
        assert successor.status_code == 201, successor.text

        switch.down = True
        answer = portal.get(f"/v1/firms/{successor.json()['id']}/matches")
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "matching_unavailable"


def test_matching_down_without_an_earlier_answer_is_503(engine: Engine) -> None:
    matching = Counting()
    with running_stack(
        engine,
        matching_url=CLOSED,
        matching_transport=matching,
        breaker_failures=3,
        breaker_reset_seconds=60,
    ) as stack:
        portal, firm_id, _ranked = seed_products_and_firm(stack)
        answer = portal.get(f"/v1/firms/{firm_id}/matches")
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "matching_unavailable"
        assert f"firm {firm_id}" in answer.json()["detail"]
        assert int(answer.headers["retry-after"]) >= 1

        # The breaker opens: further answers do not even try the matching service.
        for _ in range(3):
            portal.get(f"/v1/firms/{firm_id}/matches")
        assert stack.client.app.state.matching.breaker_state == "open"  # type: ignore[attr-defined]
        tried = matching.attempts
        for _ in range(5):
            started = time.monotonic()
            fast = portal.get(f"/v1/firms/{firm_id}/matches")
            assert time.monotonic() - started < 0.5
            assert fast.status_code == 503
            assert int(fast.headers["retry-after"]) >= 1
        assert matching.attempts == tried

        ready = stack.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["matching"] == (
            "down: matches served stale where held, else 503"
        )
        # The admin's model functions need the service itself: 503, said plainly.
        models = stack.admin.get("/v1/admin/models")
        assert models.status_code == 503
        assert models.headers["content-type"] == "application/problem+json"
        assert int(models.headers["retry-after"]) >= 1


class Switchable(httpx.AsyncBaseTransport):
    """A downstream route that can be cut: while ``down``, requests go to a closed port."""

    def __init__(self, up: httpx.AsyncBaseTransport | None = None) -> None:
        self.up = up
        self.down = False
        self.closed = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down or self.up is None:
            request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=1)
            return await self.closed.handle_async_request(request)
        return await self.up.handle_async_request(request)

    async def aclose(self) -> None:
        await self.closed.aclose()


# Registry down -------------------------------------------------------------------------------


def _user_of(endpoint: str) -> str:
    """A role the matrix says may use the endpoint (it would get a 2xx)."""
    row = next(r for r in MATRIX if r.endpoint == endpoint)
    for role in ROLES:
        cell = getattr(row, role)
        if any(200 <= status < 300 for status in ((cell,) if isinstance(cell, int) else cell)):
            return role
    raise AssertionError(f"no role may use {endpoint}")


NOT_REGISTRY = {  # the vocabulary is built in
    "ref.towns",
    "ref.industries",
    "ref.categories",
    "ref.error_codes",
}
# Answered through matching, which reads the registry on its own route (a draft's reach
# preview reads matching's firm snapshot): the gateway's route to the registry is not used.
MATCHING_ONLY = {
    "admin.models",
    "admin.train",
    "admin.promote",
    "admin.rollback",
    "products.preview",
}


@pytest.fixture
def registry_down(engine: Engine) -> Iterator[tuple[Stack, World, Switchable]]:
    """A stack whose route to the registry is cut after its callers' keys were seen once."""
    switch = Switchable(httpx.ASGITransport(app=registry_app(engine)))
    with running_stack(engine, registry_transport=switch, breaker_failures=1000) as stack:
        callers = {
            "portal_a": stack.principal("portal"),
            "institution_x": stack.institution("银行"),
            "official_116": stack.principal("official", town_code="441900116"),
            "official_121": stack.principal("official", town_code="441900121"),
            "official_city": stack.principal("official"),
            "admin": stack.admin,
        }
        for api in callers.values():
            assert api.get("/v1/reference/towns").status_code == 200  # the key is cached now
        sides = ["FA", "FB", "PX", "PY", "A_open", "A_decided", "B_open", "B_decided", "CA", "CB"]
        webhooks = ["WA", "WB", "DA", "DB"]  # endpoints and deliveries
        spares = {"spare_key": 1, "spare_principal": 1, "JOB": 1}
        ids = dict.fromkeys([*sides, *webhooks], 1) | spares
        firms = {"FA": data.firm(1), "FB": data.firm(2)}
        world = World(stack, callers, callers["portal_a"], callers["institution_x"], ids, firms)
        switch.down = True
        yield stack, world, switch


@pytest.mark.parametrize(
    "endpoint", [name for name in ENDPOINTS if name not in NOT_REGISTRY | MATCHING_ONLY]
)
def test_registry_down_every_resource_is_503(
    registry_down: tuple[Stack, World, Switchable], endpoint: str
) -> None:
    _stack, world, _switch = registry_down
    method, path, kwargs = ENDPOINTS[endpoint].call(world, "A")
    answer = world.callers[_user_of(endpoint)].request(method, path, **kwargs)
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "service_unavailable"
    assert answer.json()["downstream"] == "registry"
    assert int(answer.headers["retry-after"]) >= 1


def test_registry_down_probes_keys_and_vocabulary(
    registry_down: tuple[Stack, World, Switchable],
) -> None:
    stack, world, switch = registry_down
    assert stack.client.get("/healthz").status_code == 200
    ready = stack.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["registry"] == "down"
    assert ready.headers["retry-after"] == "5"
    # A key never seen cannot be checked: 503, not a 401 that would wrongly reject it.
    unknown = Api(stack.client, "fm_port_never-seen-before").get("/v1/firms")
    assert unknown.status_code == 503
    assert "retry-after" in unknown.headers
    # The built-in vocabulary still answers a known key.
    assert world.callers["portal_a"].get("/v1/reference/towns").status_code == 200

    switch.down = False  # back: the same requests succeed again
    assert stack.client.get("/readyz").status_code == 200
    assert world.callers["portal_a"].get("/v1/firms").status_code == 200


def test_registry_down_breaker_fails_fast(engine: Engine) -> None:
    registry = Counting()
    with running_stack(
        engine,
        registry_url=CLOSED,
        registry_transport=registry,
        breaker_failures=3,
        breaker_reset_seconds=60,
    ) as stack:
        for _ in range(3):
            answer = stack.admin.get("/v1/firms")
            assert answer.status_code == 503
        assert stack.client.app.state.registry.breaker_state == "open"  # type: ignore[attr-defined]
        tried = registry.attempts
        started = time.monotonic()
        refused = Api(stack.client, "fm_port_some-key").get("/v1/firms")
        assert time.monotonic() - started < 0.5
        assert refused.status_code == 503
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert registry.attempts == tried
        assert stack.client.get("/readyz").status_code == 503
        assert stack.client.get("/healthz").json() == {"status": "ok"}
