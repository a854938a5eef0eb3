"""The gateway's downstream clients against scripted downstreams (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from services.gateway.clients import (
    Backoff,
    CircuitBreaker,
    CircuitOpen,
    DownstreamClient,
    DownstreamError,
    DownstreamTimeout,
    DownstreamUnavailable,
    MatchingClient,
    PassThrough,
    RegistryClient,
)
from shared.request_context import request_id_var

TOKEN = "internal-test-token"
Answer = httpx.Response | type[httpx.TransportError]
Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


class Downstream:
    """Answers in the given order (the last one repeats) and keeps every request it got."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, httpx.Response):
            return answer
        raise answer("scripted failure", request=request)

    @property
    def calls(self) -> int:
        return len(self.requests)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """Stands in for asyncio.sleep: records the backoff instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def problem(status: int, code: str, detail: str, **extra: Any) -> httpx.Response:
    body = {"type": f"https://finmatch.example/problems/{code}", "title": "x", "status": status}
    body |= {"code": code, "detail": detail, "instance": "/v1/registry-path", **extra}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


def state_of(client: DownstreamClient) -> str:
    return client.breaker_state


def make_client(
    handler: Handler,
    *,
    retries: int = 2,
    breaker: CircuitBreaker | None = None,
    sleeps: Sleeps | None = None,
    backoff: Backoff | None = None,
) -> DownstreamClient:
    return DownstreamClient(
        "registry",
        "http://registry.test",
        TOKEN,
        timeout=1.0,
        retries=retries,
        breaker=breaker,
        transport=httpx.MockTransport(handler),
        backoff=backoff,
        sleep=sleeps or Sleeps(),
    )


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    # A bounded wait, so that a broken breaker or retry loop fails the test instead of hanging.
    asyncio.run(asyncio.wait_for(scenario(), timeout=5))


# Headers


def test_every_call_names_token_principal_and_request_id() -> None:
    downstream = Downstream(httpx.Response(200, json={}))

    async def scenario() -> None:
        client = make_client(downstream)
        request_id_var.set("req-abc-123")
        await client.request("GET", "/v1/firms/7", principal_id=42)
        await client.aclose()

    run(scenario)
    sent = downstream.requests[0].headers
    assert sent["X-Internal-Token"] == TOKEN
    assert sent["X-Principal-Id"] == "42"
    assert sent["X-Request-ID"] == "req-abc-123"


def test_a_call_outside_a_request_gets_a_fresh_request_id_and_no_principal() -> None:
    downstream = Downstream(httpx.Response(200, json={}))

    async def scenario() -> None:
        client = make_client(downstream)
        await client.request("GET", "/internal/catalogue")
        await client.request("GET", "/internal/catalogue")
        await client.aclose()

    run(scenario)
    ids = [r.headers["X-Request-ID"] for r in downstream.requests]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids[0] != ids[1]
    assert "X-Principal-Id" not in downstream.requests[0].headers


# Retries


def test_a_get_is_retried_after_a_connect_error() -> None:
    downstream = Downstream(httpx.ConnectError, httpx.Response(200, json={"id": 7}))
    sleeps = Sleeps()

    async def scenario() -> None:
        client = make_client(downstream, sleeps=sleeps)
        response = await client.request("GET", "/v1/firms/7", principal_id=1)
        assert response.json() == {"id": 7}
        await client.aclose()

    run(scenario)
    assert downstream.calls == 2
    assert len(sleeps.waits) == 1


def test_a_post_is_not_retried_unless_marked_idempotent() -> None:
    refused = Downstream(httpx.ConnectError, httpx.Response(201, json={}))
    sleeps = Sleeps()

    async def scenario() -> None:
        client = make_client(refused, sleeps=sleeps)
        with pytest.raises(DownstreamUnavailable):
            await client.request("POST", "/v1/applications", principal_id=1, json={})
        await client.aclose()

    run(scenario)
    assert refused.calls == 1
    assert sleeps.waits == []

    marked = Downstream(httpx.ConnectError, httpx.Response(200, json={}))

    async def idempotent_post() -> None:
        client = make_client(marked)
        await client.request("POST", "/internal/auth/resolve", json={}, idempotent=True)
        await client.aclose()

    run(idempotent_post)
    assert marked.calls == 2


def test_a_get_marked_not_idempotent_is_not_retried() -> None:
    downstream = Downstream(httpx.ReadTimeout, httpx.Response(200, json={}))

    async def scenario() -> None:
        client = make_client(downstream)
        with pytest.raises(DownstreamTimeout):
            await client.request("GET", "/v1/firms", idempotent=False)
        await client.aclose()

    run(scenario)
    assert downstream.calls == 1


def test_attempts_are_bounded_and_waits_are_capped_exponential_with_jitter() -> None:
    downstream = Downstream(httpx.Response(502, text="bad gateway"))
    sleeps = Sleeps()
    random.seed(1234)

    async def scenario() -> None:
        client = make_client(
            downstream,
            retries=4,
            sleeps=sleeps,
            backoff=Backoff(first=0.1, cap=0.3),
            breaker=CircuitBreaker(failure_threshold=100),
        )
        with pytest.raises(DownstreamError) as raised:
            await client.request("GET", "/v1/firms")
        assert raised.value.status == 502
        await client.aclose()

    run(scenario)
    assert downstream.calls == 5
    assert len(sleeps.waits) == 4
    ceilings = [0.1, 0.2, 0.3, 0.3]  # first·2ⁿ⁻¹, capped
    assert all(0 <= wait <= top for wait, top in zip(sleeps.waits, ceilings, strict=True))
    assert sleeps.waits != ceilings  # jittered, not the plain exponential


def test_a_4xx_passes_through_unchanged_and_is_not_retried() -> None:
    errors = [{"field": "credit_code", "message": "taken", "type": "value_error"}]
    answer = problem(409, "firm_registered_elsewhere", "credit code taken", errors=errors)
    answer.headers["ETag"] = '"4"'
    downstream = Downstream(answer)

    async def scenario() -> None:
        client = make_client(downstream)
        with pytest.raises(PassThrough) as raised:
            await client.request("GET", "/v1/firms/3", principal_id=1)
        await client.aclose()
        exc = raised.value
        expected = (409, "firm_registered_elsewhere", "credit code taken")
        assert (exc.status, exc.code, exc.detail) == expected
        assert exc.errors == errors
        assert exc.headers == {"ETag": '"4"'}
        body = exc.to_problem("/v1/firms/3")
        assert body["status"] == 409
        assert body["code"] == "firm_registered_elsewhere"
        assert body["errors"] == errors
        assert body["instance"] == "/v1/firms/3"
        assert "instance" not in exc.to_problem()  # never the registry's own path

    run(scenario)
    assert downstream.calls == 1


def test_a_downstream_code_we_never_registered_is_answered_as_its_status() -> None:
    """Only registered codes reach a public client (shared/error_codes.py)."""
    downstream = Downstream(problem(409, "duplicate_firm", "credit code taken"))

    async def scenario() -> None:
        client = make_client(downstream)
        with pytest.raises(PassThrough) as raised:
            await client.request("GET", "/v1/firms/3", principal_id=1)
        await client.aclose()
        body = raised.value.to_problem("/v1/firms/3")
        assert (body["status"], body["code"]) == (409, "conflict")
        assert body["type"].endswith("/conflict")
        assert body["detail"] == "credit code taken"

    run(scenario)


def test_a_4xx_without_a_problem_body_still_gets_a_code() -> None:
    downstream = Downstream(httpx.Response(404, text="Not Found"))

    async def scenario() -> None:
        client = make_client(downstream)
        with pytest.raises(PassThrough) as raised:
            await client.request("GET", "/v1/firms/3", principal_id=1)
        await client.aclose()
        assert (raised.value.status, raised.value.code) == (404, "not_found")

    run(scenario)


def test_a_refused_internal_token_is_a_502_not_the_callers_401() -> None:
    downstream = Downstream(problem(401, "internal_token_required", "wrong token"))

    async def scenario() -> None:
        client = make_client(downstream)
        with pytest.raises(DownstreamError) as raised:
            await client.request("GET", "/v1/firms", principal_id=1)
        await client.aclose()
        assert raised.value.status == 502

    run(scenario)


@pytest.mark.parametrize(
    ("downstream_status", "calls", "status", "code"),
    [
        (500, 1, 502, "bad_gateway"),  # a bug downstream: retrying will not help
        (502, 3, 502, "bad_gateway"),
        (504, 3, 502, "bad_gateway"),
        (503, 3, 503, "service_unavailable"),
    ],
)
def test_a_5xx_after_the_retries_maps_to_502_or_503(
    downstream_status: int, calls: int, status: int, code: str
) -> None:
    downstream = Downstream(
        httpx.Response(downstream_status, json={"detail": "x"}, headers={"Retry-After": "7"})
    )

    async def scenario() -> None:
        client = make_client(downstream)
        with pytest.raises(DownstreamError) as raised:
            await client.request("GET", "/v1/products", principal_id=1)
        await client.aclose()
        exc = raised.value
        assert (exc.status, exc.code) == (status, code)
        assert exc.to_problem()["downstream"] == "registry"
        if status == 503:
            assert exc.headers["Retry-After"] == "7"

    run(scenario)
    assert downstream.calls == calls


def test_a_timeout_is_a_504_and_a_connect_timeout_a_503() -> None:
    slow = Downstream(httpx.ReadTimeout)
    unreachable = Downstream(httpx.ConnectTimeout)

    async def scenario() -> None:
        client = make_client(slow)
        with pytest.raises(DownstreamTimeout) as raised:
            await client.request("GET", "/v1/firms")
        assert (raised.value.status, raised.value.code) == (504, "gateway_timeout")
        await client.aclose()
        client = make_client(unreachable)
        with pytest.raises(DownstreamUnavailable) as unavailable:
            await client.request("GET", "/v1/firms")
        assert unavailable.value.headers["Retry-After"] == "5"
        await client.aclose()

    run(scenario)
    assert slow.calls == 3


def test_malformed_json_in_a_2xx_is_a_502() -> None:
    downstream = Downstream(httpx.Response(200, text="<html>oops</html>"))

    async def scenario() -> None:
        client = RegistryClient(
            "http://registry.test", TOKEN, transport=httpx.MockTransport(downstream)
        )
        with pytest.raises(DownstreamError) as raised:
            await client.get_firm(1, 7)
        assert raised.value.status == 502
        await client.aclose()

    run(scenario)


# Circuit breaker


def test_the_circuit_opens_after_the_threshold_and_then_fails_fast() -> None:
    downstream = Downstream(httpx.ConnectError)
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=30, clock=Clock())

    async def scenario() -> None:
        client = make_client(downstream, retries=0, breaker=breaker)
        for _ in range(3):
            with pytest.raises(DownstreamUnavailable) as raised:
                await client.request("GET", "/v1/firms")
            assert not isinstance(raised.value, CircuitOpen)
        assert state_of(client) == "open"
        with pytest.raises(CircuitOpen) as fast:
            await client.request("GET", "/v1/firms")
        assert fast.value.status == 503
        assert fast.value.headers["Retry-After"] == "30"
        await client.aclose()

    run(scenario)
    assert downstream.calls == 3  # the fourth call never reached the transport


def test_retries_stop_as_soon_as_the_circuit_opens() -> None:
    downstream = Downstream(httpx.ConnectError)

    async def scenario() -> None:
        client = make_client(downstream, retries=4, breaker=CircuitBreaker(failure_threshold=2))
        with pytest.raises(CircuitOpen):
            await client.request("GET", "/v1/firms")
        await client.aclose()

    run(scenario)
    assert downstream.calls == 2


def test_after_the_reset_time_one_trial_call_closes_the_circuit() -> None:
    downstream = Downstream(
        httpx.ConnectError, httpx.ConnectError, httpx.Response(200, json={"ok": True})
    )
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=30, clock=clock)

    async def scenario() -> None:
        client = make_client(downstream, retries=0, breaker=breaker)
        for _ in range(2):
            with pytest.raises(DownstreamUnavailable):
                await client.request("GET", "/v1/firms")
        clock.now += 29.5
        assert state_of(client) == "open"
        with pytest.raises(CircuitOpen):
            await client.request("GET", "/v1/firms")
        clock.now += 0.5
        assert state_of(client) == "half_open"
        response = await client.request("GET", "/v1/firms")
        assert response.json() == {"ok": True}
        assert state_of(client) == "closed"
        assert breaker.failures == 0
        await client.aclose()

    run(scenario)
    assert downstream.calls == 3


def test_a_failed_trial_opens_the_circuit_again() -> None:
    downstream = Downstream(httpx.Response(503, text="down"))
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=10, clock=clock)

    async def scenario() -> None:
        client = make_client(downstream, retries=0, breaker=breaker)
        with pytest.raises(DownstreamUnavailable):
            await client.request("GET", "/v1/firms")
        clock.now += 10
        with pytest.raises(DownstreamUnavailable) as trial:
            await client.request("GET", "/v1/firms")
        assert not isinstance(trial.value, CircuitOpen)
        assert state_of(client) == "open"
        with pytest.raises(CircuitOpen):
            await client.request("GET", "/v1/firms")
        await client.aclose()

    run(scenario)
    assert downstream.calls == 2


def test_only_one_trial_call_goes_out_while_half_open() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=5, clock=clock)
    calls = 0

    async def scenario() -> None:
        release = asyncio.Event()

        async def slow_ok(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            await release.wait()
            return httpx.Response(200, json={})

        breaker.record_failure()
        clock.now += 5
        client = make_client(slow_ok, retries=0, breaker=breaker)
        trial = asyncio.create_task(client.request("GET", "/v1/firms"))
        await asyncio.sleep(0)  # the trial is now waiting in the transport
        assert calls == 1
        with pytest.raises(CircuitOpen):
            await client.request("GET", "/v1/firms")
        release.set()
        await trial
        assert state_of(client) == "closed"
        await client.request("GET", "/v1/firms")
        await client.aclose()

    run(scenario)
    assert calls == 2


def test_a_cancelled_trial_frees_the_trial_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=5, clock=clock)
    calls = 0

    async def scenario() -> None:
        async def hangs_once(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            if calls == 1:
                await asyncio.Event().wait()
            return httpx.Response(200, json={})

        breaker.record_failure()
        clock.now += 5
        client = make_client(hangs_once, retries=0, breaker=breaker)
        trial = asyncio.create_task(client.request("GET", "/v1/firms"))
        await asyncio.sleep(0)
        trial.cancel()  # e.g. the public client went away
        with pytest.raises(asyncio.CancelledError):
            await trial
        assert state_of(client) == "half_open"
        await client.request("GET", "/v1/firms")  # the next call is the trial
        assert state_of(client) == "closed"
        await client.aclose()

    run(scenario)
    assert calls == 2


def test_a_4xx_does_not_count_as_a_failure() -> None:
    downstream = Downstream(
        httpx.ConnectError,
        problem(404, "not_found", "no firm"),
        httpx.ConnectError,
        problem(422, "validation_error", "bad"),
        httpx.ConnectError,
        problem(412, "stale_version", "stale"),
    )
    breaker = CircuitBreaker(failure_threshold=2)

    async def scenario() -> None:
        client = make_client(downstream, retries=0, breaker=breaker)
        for _ in range(3):
            with pytest.raises(DownstreamUnavailable):
                await client.request("GET", "/v1/firms/1")
            with pytest.raises(PassThrough):
                await client.request("GET", "/v1/firms/1")
        assert state_of(client) == "closed"
        await client.aclose()

    run(scenario)
    assert downstream.calls == 6


# Streaming and probes


async def ndjson() -> AsyncIterator[bytes]:
    yield b'{"credit_code": "91110000600037341L"}\n'
    yield b'{"credit_code": "91350100M000100Y43"}\n'


def test_bulk_import_streams_the_body_once_and_is_never_retried() -> None:
    answer = httpx.Response(200, content=b'{"line": 1}\n', headers={"Content-Type": "x-ndjson"})
    downstream = Downstream(answer)
    refused = Downstream(httpx.ConnectError)

    async def scenario() -> None:
        registry = RegistryClient(
            "http://registry.test", TOKEN, transport=httpx.MockTransport(downstream)
        )
        params = {"import_id": "imp-1", "batch_size": None}
        response = await registry.bulk_import(5, params, ndjson())
        assert response.content == b'{"line": 1}\n'
        await registry.aclose()
        registry = RegistryClient(
            "http://registry.test", TOKEN, transport=httpx.MockTransport(refused)
        )
        with pytest.raises(DownstreamUnavailable):
            await registry.bulk_import(5, {"import_id": "imp-1"}, ndjson())
        await registry.aclose()

    run(scenario)
    sent = downstream.requests[0]
    assert sent.url.path == "/v1/firms/bulk"
    assert dict(sent.url.params) == {"import_id": "imp-1"}
    assert sent.headers["Content-Type"] == "application/x-ndjson"
    assert sent.headers["X-Principal-Id"] == "5"
    assert sent.content.count(b"\n") == 2
    assert sent.extensions["timeout"]["read"] == 300.0
    assert refused.calls == 1


def test_ready_answers_a_bool_and_never_raises_or_trips_the_breaker() -> None:
    answers: list[Answer] = [httpx.Response(200, json={}), httpx.Response(503, json={})]
    answers += [httpx.ConnectError]

    async def scenario() -> None:
        downstream = Downstream(*answers)
        breaker = CircuitBreaker(failure_threshold=1)
        client = RegistryClient(
            "http://registry.test",
            TOKEN,
            breaker=breaker,
            transport=httpx.MockTransport(downstream),
        )
        assert [await client.ready() for _ in range(3)] == [True, False, False]
        assert state_of(client) == "closed"
        await client.aclose()

    run(scenario)


def test_a_ready_probe_closes_an_open_breaker() -> None:
    """The service says it is back (its /readyz): calls resume now, not after the pause."""
    downstream = Downstream(httpx.ConnectError, httpx.Response(200, json={}))

    async def scenario() -> None:
        breaker = CircuitBreaker(failure_threshold=1, reset_seconds=30)
        client = RegistryClient(
            "http://registry.test",
            TOKEN,
            breaker=breaker,
            transport=httpx.MockTransport(downstream),
        )
        breaker.record_failure()
        assert state_of(client) == "open"
        assert await client.ready() is False  # refused: still open
        assert state_of(client) == "open"
        assert await client.ready() is True
        assert state_of(client) == "closed"
        await client.aclose()

    run(scenario)


# Registry calls


def test_registry_get_firm_carries_its_etag() -> None:
    def registry(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": 9}, headers={"ETag": '"1"'})

    async def scenario() -> None:
        client = RegistryClient(
            "http://registry.test", TOKEN, transport=httpx.MockTransport(registry)
        )
        assert await client.get_firm(3, 9) == ({"id": 9}, '"1"')
        await client.aclose()

    run(scenario)


def test_a_patch_is_not_retried() -> None:
    downstream = Downstream(httpx.Response(502, text="x"), httpx.Response(200, json={}))

    async def scenario() -> None:
        client = RegistryClient(
            "http://registry.test", TOKEN, transport=httpx.MockTransport(downstream)
        )
        with pytest.raises(DownstreamError):
            await client.request(
                "PATCH",
                "/v1/products/4",
                principal_id=3,
                json={"active": False},
                headers={"If-Match": '"2"'},
            )
        await client.aclose()

    run(scenario)
    assert downstream.calls == 1


def test_resolve_key_passes_a_401_through() -> None:
    downstream = Downstream(problem(401, "invalid_key", "unknown or revoked API key"))

    async def scenario() -> None:
        client = RegistryClient(
            "http://registry.test", TOKEN, transport=httpx.MockTransport(downstream)
        )
        with pytest.raises(PassThrough) as raised:
            await client.resolve_key("a" * 64)
        assert (raised.value.status, raised.value.code) == (401, "invalid_key")
        await client.aclose()

    run(scenario)
    sent = downstream.requests[0]
    assert (sent.method, sent.url.path) == ("POST", "/internal/auth/resolve")
    assert json.loads(sent.content) == {"key_hash": "a" * 64}
    assert "X-Principal-Id" not in sent.headers


# Matching calls


class CatalogueAwareMatching(Downstream):
    """Knows the catalogue versions it was sent whole; asks for the products of any other."""

    def __init__(self) -> None:
        super().__init__(httpx.Response(500))
        self.known: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        if body.get("products") is None and body["catalogue_version"] not in self.known:
            return problem(409, "catalogue_unknown", "send the products")
        self.known.add(body["catalogue_version"])
        return httpx.Response(200, json={"model_version": "m1", "ranked": []})


def matching_client(handler: Handler) -> MatchingClient:
    return MatchingClient("http://matching.test", TOKEN, transport=httpx.MockTransport(handler))


def test_rank_resends_with_the_products_only_when_the_catalogue_is_unknown() -> None:
    downstream = CatalogueAwareMatching()
    products = [{"id": 1}, {"id": 2}]

    async def scenario() -> None:
        client = matching_client(downstream)
        first = await client.rank_with_catalogue({"town_code": "x"}, "cat-2-ab", products)
        assert first["model_version"] == "m1"
        await client.rank_with_catalogue({"town_code": "x"}, "cat-2-ab", products, {"limit": 5})
        await client.aclose()

    run(scenario)
    bodies = [json.loads(r.content) for r in downstream.requests]
    assert len(bodies) == 3
    assert "products" not in bodies[0]
    assert bodies[1]["products"] == products
    assert bodies[1]["catalogue_version"] == "cat-2-ab"
    assert "products" not in bodies[2]  # the version is known now: no resend
    assert bodies[2]["options"] == {"limit": 5}


def test_rank_does_not_resend_on_another_conflict() -> None:
    downstream = Downstream(problem(409, "conflict", "something else"))

    async def scenario() -> None:
        client = matching_client(downstream)
        with pytest.raises(PassThrough) as raised:
            await client.rank_with_catalogue({}, "cat-1-aa", [{"id": 1}])
        assert raised.value.code == "conflict"
        await client.aclose()

    run(scenario)
    assert downstream.calls == 1


def test_rank_is_retried_like_a_read() -> None:
    downstream = Downstream(httpx.ConnectError, httpx.Response(200, json={"ranked": []}))

    async def scenario() -> None:
        client = MatchingClient(
            "http://matching.test",
            TOKEN,
            transport=httpx.MockTransport(downstream),
            sleep=Sleeps(),
        )
        assert await client.rank({"firm": {}}) == {"ranked": []}
        await client.aclose()

    run(scenario)
    assert downstream.calls == 2


def test_model_lifecycle_calls_name_the_actor_and_quote_the_version() -> None:
    downstream = Downstream(httpx.Response(200, json={"version": "v1"}))

    async def scenario() -> None:
        client = matching_client(downstream)
        await client.train(auto_promote=False, actor=1)
        await client.promote("v/1", actor=1)
        await client.rollback(actor=None)
        await client.aclose()

    run(scenario)
    train, promote, rollback = downstream.requests
    assert json.loads(train.content) == {"auto_promote": False}
    assert train.headers["X-Principal-Id"] == "1"
    # Training is a background job: queuing it is as quick as any call, no long timeout.
    assert train.extensions["timeout"] == promote.extensions["timeout"]
    assert promote.url.raw_path == b"/internal/models/v%2F1/promote"
    assert "X-Principal-Id" not in rollback.headers


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1, 2]", b'{"ranked": [}'])
def test_a_rank_answer_that_is_not_a_json_object_is_a_502(body: bytes) -> None:
    downstream = Downstream(httpx.Response(200, content=body))

    async def scenario() -> None:
        client = matching_client(downstream)
        with pytest.raises(DownstreamError) as raised:
            await client.rank({"firm": {}})
        assert raised.value.status == 502
        await client.aclose()

    run(scenario)


def test_rank_and_match_events_are_sent_as_json() -> None:
    downstream = Downstream(httpx.Response(202, json={"recorded": 1}))
    events = [{"firm_id": 1, "product_id": 2, "score": 0.25, "town_code": "441900116"}]

    async def scenario() -> None:
        matching = matching_client(downstream)
        await matching.rank({"firm": {"town_code": "441900116"}, "options": {"lang": "zh"}})
        await matching.aclose()
        registry = RegistryClient(
            "http://registry.test", TOKEN, transport=httpx.MockTransport(downstream)
        )
        assert await registry.record_match_events(events) == {"recorded": 1}
        await registry.aclose()

    run(scenario)
    rank, recorded = downstream.requests
    assert rank.headers["Content-Type"] == "application/json"
    assert json.loads(rank.content) == {
        "firm": {"town_code": "441900116"},
        "options": {"lang": "zh"},
    }
    assert recorded.headers["Content-Type"] == "application/json"
    assert json.loads(recorded.content) == {"events": events}


# The default transport (aiohttp's pool under httpx) against real sockets.


async def _tcp_server(
    on_connect: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]],
) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def _pooled(url: str, **options: Any) -> DownstreamClient:
    return DownstreamClient(
        "registry",
        url,
        TOKEN,
        timeout=httpx.Timeout(0.5, connect=0.5),
        backoff=Backoff(0.01, 0.02),
        **options,
    )


async def _ignore(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


def test_a_refused_connection_is_a_503_naming_connect_error() -> None:
    async def scenario() -> None:
        server, url = await _tcp_server(_ignore)
        server.close()
        await server.wait_closed()  # nothing listens on the port now
        client = _pooled(url)
        with pytest.raises(DownstreamUnavailable) as raised:
            await client.request("GET", "/v1/firms")
        assert "ConnectError" in raised.value.detail
        await client.aclose()

    run(scenario)


def test_a_connection_closed_without_an_answer_is_a_protocol_error() -> None:
    """Retried for a read (and then a 502), never for a POST."""
    accepted: list[int] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        accepted.append(1)
        writer.close()

    async def scenario() -> None:
        server, url = await _tcp_server(hang_up)
        client = _pooled(url)
        with pytest.raises(DownstreamError) as read:
            await client.request("GET", "/v1/firms")
        assert read.value.status == 502
        assert "RemoteProtocolError" in read.value.detail
        # Three attempts (the first and two retries), each of which aiohttp's pool makes twice:
        # it resends an idempotent request once when the server closes the connection (the
        # race with a keep-alive timeout). Bounded either way.
        assert len(accepted) == 6
        with pytest.raises(DownstreamError) as write:
            await client.request("POST", "/v1/firms", json={})
        assert write.value.status == 502
        assert len(accepted) == 7  # a POST is sent once, at every level
        await client.aclose()
        server.close()
        await server.wait_closed()

    run(scenario)


def test_no_answer_within_the_read_timeout_is_a_504() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)
        writer.close()

    async def scenario() -> None:
        server, url = await _tcp_server(silent)
        client = _pooled(url, retries=0)
        with pytest.raises(DownstreamTimeout) as raised:
            await client.request("GET", "/v1/firms")
        assert raised.value.status == 504
        await client.aclose()
        server.close()

    run(scenario)


def test_the_pooled_transport_reuses_one_connection_for_sequential_calls() -> None:
    connections: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
            )
            await writer.drain()
        writer.close()

    async def scenario() -> None:
        server, url = await _tcp_server(answer)
        client = _pooled(url)
        for _ in range(5):
            response = await client.request("GET", "/v1/firms")
            assert response.json() == {}
        await client.aclose()
        server.close()
        await server.wait_closed()

    run(scenario)
    assert connections == [1]


def test_an_open_breaker_tries_again_soon_and_backs_off_while_the_trials_fail() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=2, max_reset_seconds=7, clock=clock)
    breaker.record_failure()
    assert breaker.state == "open"
    pauses = []
    for _ in range(4):  # each trial fails: 2 s, then 4, then the 7 s cap, and 7 again
        started = clock.now
        while not breaker.allow():
            clock.now += 0.5
        pauses.append(clock.now - started)
        breaker.record_failure()
    assert pauses == [2.0, 4.0, 7.0, 7.0]
    clock.now += 7
    assert breaker.allow()
    breaker.record_success()  # the downstream is back: closed, and the next pause short again
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.seconds_until_trial() == 2.0


def test_a_503_problem_passes_through_untried_again_and_keeps_the_breaker_closed() -> None:
    """The registry's database is down: it answers at once with its own code; the breaker
    guards against a dead or slow service, which this one is not."""
    downstream = Downstream(
        httpx.Response(
            503,
            json={"code": "database_unavailable", "detail": "the database is unavailable"},
            headers={"Retry-After": "2", "Content-Type": "application/problem+json"},
        )
    )
    breaker = CircuitBreaker(failure_threshold=1)

    async def scenario() -> None:
        client = make_client(downstream, retries=2, breaker=breaker)
        for _ in range(3):
            with pytest.raises(DownstreamUnavailable) as raised:
                await client.request("GET", "/v1/firms/1", principal_id=1)
            assert not isinstance(raised.value, CircuitOpen)
            assert (raised.value.status, raised.value.code) == (503, "database_unavailable")
            assert raised.value.headers["Retry-After"] == "2"
        assert state_of(client) == "closed"
        await client.aclose()

    run(scenario)
    assert downstream.calls == 3  # one each: it said when to come back
