"""Failed authentication is throttled per client address and per key prefix (429 with
Retry-After), and each failure is a security event: a log line and a counter."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.ratelimit import RateLimiter
from tests.gateway.conftest import BOOTSTRAP, Api, Stack, build_stack
from tests.gateway.redis_helpers import FakeClock, delete_keys
from tests.services import need_redis

PER_ADDRESS, PER_PREFIX = 5, 3
LIMITS = {"auth_failures_per_address": PER_ADDRESS, "auth_failures_per_key_prefix": PER_PREFIX}
ADDRESS_HEADER = "x-test-client-address"


class ClientAddressFromHeader:
    """Sets the client address from a test header, as uvicorn does from a trusted proxy's."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == ADDRESS_HEADER.encode():
                    scope = dict(scope, client=(value.decode(), 50000))
        app: ASGIApp = self.app
        await app(scope, receive, send)


class From(Api):
    """A key sent from one client address."""

    def __init__(self, client: TestClient, key: str, address: str) -> None:
        super().__init__(client, key)
        self.address = address

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {ADDRESS_HEADER: self.address} | kwargs.pop("headers", {})
        return super().request(method, url, headers=headers, **kwargs)


@contextmanager
def stack_with_addresses(engine: Engine, **overrides: Any) -> Iterator[Stack]:
    if overrides.get("redis_url"):
        overrides["redis_prefix"] = f"finmatch-test:{uuid.uuid4().hex}:"
    built, _manager = build_stack(engine, **(LIMITS | overrides))
    client = TestClient(ClientAddressFromHeader(built.app))
    try:
        with client:
            yield Stack(client=client, admin=Api(client, BOOTSTRAP), engine=engine)
    finally:
        if overrides.get("redis_url"):
            delete_keys(overrides["redis_url"], overrides["redis_prefix"])


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
def guarded(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Stack]:
    redis_url = need_redis() if request.param == "redis" else None
    with stack_with_addresses(engine, redis_url=redis_url) as stack:
        yield stack


def unknown_key(prefix: str = "fm_port_") -> str:
    return prefix + secrets.token_urlsafe(32)


def failures(reason: str) -> float:
    value = REGISTRY.get_sample_value("finmatch_gateway_auth_failures_total", {"reason": reason})
    return value or 0.0


def security_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "finmatch.security"]


def assert_throttled(answer: httpx.Response) -> int:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "auth_throttled"
    retry = int(answer.headers["retry-after"])
    assert 1 <= retry <= 60
    return retry


def test_an_address_trying_unknown_keys_is_throttled(
    guarded: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="finmatch.security")
    throttled_before = failures("throttled")
    unknown_before = failures("unknown_key")
    keys = [unknown_key(f"fm_{i:02}_") for i in range(PER_ADDRESS)]  # a prefix each
    for key in keys:
        answer = From(guarded.client, key, "198.51.100.7").get("/v1/firms")
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_key"
    assert failures("unknown_key") - unknown_before == PER_ADDRESS
    lines = security_lines(caplog)
    assert [(r.reason, r.client_address) for r in lines] == [  # type: ignore[attr-defined]
        ("unknown_key", "198.51.100.7")
    ] * PER_ADDRESS
    assert [r.key_prefix for r in lines] == [k[:12] for k in keys]  # type: ignore[attr-defined]

    caplog.clear()
    assert_throttled(From(guarded.client, unknown_key("fm_new_"), "198.51.100.7").get("/v1/firms"))
    assert failures("throttled") - throttled_before == 1
    [line] = security_lines(caplog)
    assert (line.reason, line.client_address) == ("throttled", "198.51.100.7")  # type: ignore[attr-defined]
    # Another address is not affected.
    other = From(guarded.client, unknown_key("fm_new_"), "203.0.113.9").get("/v1/firms")
    assert other.status_code == 401


def test_the_whole_key_is_never_logged(guarded: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="finmatch.security")
    keys = [unknown_key(), "short-key", "x" * 201, "fm_port_ключ"]
    for key in keys:
        answer = From(guarded.client, key, "198.51.100.8").get(
            "/v1/firms", headers={"Authorization": f"Bearer {key}".encode()}
        )
        assert answer.status_code == 401
    lines = security_lines(caplog)
    assert [r.reason for r in lines] == [  # type: ignore[attr-defined]
        "unknown_key",
        "unknown_key",
        "malformed_key",
        "malformed_key",
    ]
    assert [r.key_prefix for r in lines] == [keys[0][:12], "shor", "x" * 12, ""]  # type: ignore[attr-defined]
    for record in lines:
        text = record.getMessage() + repr(record.__dict__)
        for key in keys:
            assert key not in text


def test_a_key_prefix_tried_from_many_addresses_is_throttled(guarded: Stack) -> None:
    prefix = "fm_port_AbCd"
    for i in range(PER_PREFIX):
        answer = From(guarded.client, unknown_key(prefix), f"192.0.2.{i}").get("/v1/firms")
        assert answer.status_code == 401
    retry = assert_throttled(
        From(guarded.client, unknown_key(prefix), "192.0.2.99").get("/v1/firms")
    )
    assert retry <= 60
    # Another prefix from the same address is only counted, not refused.
    other = From(guarded.client, unknown_key("fm_port_WxYz"), "192.0.2.99").get("/v1/firms")
    assert other.status_code == 401


def test_a_valid_key_in_use_is_not_locked_out_by_others_failures(guarded: Stack) -> None:
    portal = guarded.principal("portal")
    mine = From(guarded.client, portal.key, "198.51.100.20")
    assert mine.get("/v1/firms").status_code == 200
    for i in range(PER_ADDRESS + 3):
        From(guarded.client, unknown_key(f"fm_{i:02}_"), "198.51.100.20").get("/v1/firms")
    assert_throttled(From(guarded.client, unknown_key(), "198.51.100.20").get("/v1/firms"))
    for _ in range(3):  # held as valid: someone else's failures do not stop it
        assert mine.get("/v1/firms").status_code == 200
    # A valid key not held yet waits for the window, like any key the registry must check.
    fresh = guarded.principal("portal")
    assert_throttled(From(guarded.client, fresh.key, "198.51.100.20").get("/v1/firms"))
    assert From(guarded.client, fresh.key, "198.51.100.21").get("/v1/firms").status_code == 200


def test_a_revoked_key_locks_its_own_prefix_not_its_address(guarded: Stack) -> None:
    """A client still sending its revoked key (it missed a rotation) cannot lock its
    neighbours' keys out: the failures of a real key count against its prefix only."""
    portal = guarded.principal("portal")
    owner = portal.principal_id  # type: ignore[attr-defined]
    listed = guarded.admin.get("/v1/admin/keys", params={"principal_id": owner}).json()["data"]
    assert guarded.admin.post(f"/v1/admin/keys/{listed[0]['id']}/revoke").status_code == 200
    old = From(guarded.client, portal.key, "198.51.100.30")
    for _ in range(PER_PREFIX):
        assert old.get("/v1/firms").status_code == 401
    assert_throttled(old.get("/v1/firms"))
    assert failures("revoked_key") >= PER_PREFIX
    new = guarded.admin.post("/v1/admin/keys", json={"principal_id": owner}).json()["key"]
    assert From(guarded.client, new, "198.51.100.30").get("/v1/firms").status_code == 200


def test_an_expired_key_held_in_the_cache_is_counted_and_throttled(guarded: Stack) -> None:
    owner = guarded.admin.post("/v1/admin/principals", json={"role": "portal", "name": "期"})
    expires = datetime.now(UTC) + timedelta(seconds=10)
    made = guarded.admin.post(
        "/v1/admin/keys",
        json={"principal_id": owner.json()["id"], "expires_at": expires.isoformat()},
    )
    api = From(guarded.client, made.json()["key"], "198.51.100.40")
    assert api.get("/v1/firms").status_code == 200
    state = guarded.client.app.state  # type: ignore[attr-defined]
    state.wall_clock = FakeClock(expires.timestamp() + 1)  # expired, and still held
    answers = [api.get("/v1/firms") for _ in range(PER_PREFIX + 1)]
    assert [a.json()["code"] for a in answers] == ["key_expired"] * PER_PREFIX + ["auth_throttled"]


def test_the_failure_window_resets(engine: Engine) -> None:
    with stack_with_addresses(engine) as stack:
        clock = FakeClock()
        stack.client.app.state.limiter = RateLimiter(None, clock=clock)  # type: ignore[attr-defined]
        prefix = "fm_port_Reset"
        for _ in range(PER_PREFIX):
            assert (
                From(stack.client, unknown_key(prefix), "192.0.2.1").get("/v1/firms").status_code
                == 401
            )
        refused = From(stack.client, unknown_key(prefix), "192.0.2.1").get("/v1/firms")
        assert int(refused.headers["retry-after"]) == 60
        clock.advance(59.5)
        refused = From(stack.client, unknown_key(prefix), "192.0.2.1").get("/v1/firms")
        assert assert_throttled(refused) == 1
        clock.advance(0.5)
        answer = From(stack.client, unknown_key(prefix), "192.0.2.1").get("/v1/firms")
        assert answer.status_code == 401


def test_limits_are_configurable_and_a_missing_key_is_never_throttled(engine: Engine) -> None:
    with stack_with_addresses(
        engine, auth_failures_per_address=1, auth_failures_per_key_prefix=100
    ) as stack:
        for _ in range(30):
            assert stack.client.get("/v1/firms").status_code == 401  # no key: nothing to guess
        assert From(stack.client, unknown_key(), "192.0.2.5").get("/v1/firms").status_code == 401
        assert_throttled(From(stack.client, unknown_key(), "192.0.2.5").get("/v1/firms"))


def test_four_hundred_wrong_keys_in_a_row_are_mostly_refused_unlooked_up(engine: Engine) -> None:
    """With the default limits (20 a minute): 20 look-ups answer 401, then 429s that never
    reach the registry."""
    with stack_with_addresses(
        engine, auth_failures_per_address=20, auth_failures_per_key_prefix=20
    ) as stack:
        registry = stack.client.app.state.registry  # type: ignore[attr-defined]
        looked_up: list[str] = []
        original = registry.resolve_key

        async def counting(key_hash: str) -> Any:
            looked_up.append(key_hash)
            return await original(key_hash)

        registry.resolve_key = counting
        statuses = [
            From(stack.client, unknown_key(), "192.0.2.9").get("/v1/reference/towns").status_code
            for _ in range(400)
        ]
        assert statuses == [401] * 20 + [429] * 380
        assert len(looked_up) == 20
