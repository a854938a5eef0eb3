"""Forwarded headers: believed from FINMATCH_TRUSTED_PROXIES only, so that behind the
TLS-terminating proxy the dashboard's session cookie is Secure and no other peer can claim
https or another client address."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from services.gateway.config import GatewaySettings
from services.gateway.dashboard.sessions import SESSION_COOKIE
from tests.e2e.cluster import free_port
from tests.gateway.conftest import BOOTSTRAP, Api, Stack, build_stack

REPO = Path(__file__).resolve().parents[2]
PROXY = "10.20.30.40"
STRANGER = "198.51.100.7"
HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
# A well-formed id of no live session: the page answers it by deleting the cookie, with the
# same flags as it sets it (no registry needed).
STALE_SESSION = "s" * 43
READY_SECONDS = 30.0


@contextmanager
def stack_seen_from(engine: Engine, peer: str, **overrides: Any) -> Iterator[Stack]:
    """The in-process stack, every request arriving from ``peer`` (as a proxy or client)."""
    built, _manager = build_stack(engine, **overrides)
    with TestClient(built.app, client=(peer, 44321)) as client:
        yield Stack(client=client, admin=Api(client, BOOTSTRAP), engine=engine)


def signed_in_cookie_flags(stack: Stack, **headers: str) -> set[str]:
    official = stack.principal("official")
    answer = stack.client.post(
        "/dashboard/session", data={"key": official.key}, headers=headers, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    return {part.strip().lower() for part in cookie.split(";")}


def test_https_forwarded_by_the_trusted_proxy_makes_the_cookie_secure(engine: Engine) -> None:
    with stack_seen_from(engine, PROXY, trusted_proxies=["10.0.0.0/8"]) as stack:
        # The browser's page is https, so its Origin is too: accepted behind the proxy.
        flags = signed_in_cookie_flags(stack, origin="https://testserver", **HTTPS)
    assert {"secure", "httponly", "samesite=strict"} <= flags


def test_https_claimed_by_an_untrusted_peer_is_ignored(engine: Engine) -> None:
    with stack_seen_from(engine, STRANGER, trusted_proxies=["10.0.0.0/8"]) as stack:
        flags = signed_in_cookie_flags(stack, **HTTPS)
    assert "secure" not in flags


def test_by_default_only_loopback_is_trusted(engine: Engine) -> None:
    assert [str(n) for n in GatewaySettings().trusted_proxies] == ["127.0.0.1/32", "::1/128"]
    with stack_seen_from(engine, "127.0.0.1") as local:
        assert "secure" in signed_in_cookie_flags(local, **HTTPS)
    with stack_seen_from(engine, PROXY) as remote:
        assert "secure" not in signed_in_cookie_flags(remote, **HTTPS)


def test_the_client_address_is_the_forwarded_one_only_from_the_proxy(engine: Engine) -> None:
    """Sign-in attempts are counted per client: behind the proxy, per real client."""

    async def peer(request: Request) -> dict[str, str | None]:
        return {"client": request.client.host if request.client else None}

    for seen_from, expected in ((PROXY, "203.0.113.9"), (STRANGER, STRANGER)):
        with stack_seen_from(engine, seen_from, trusted_proxies=["10.0.0.0/8"]) as stack:
            stack.client.app.add_api_route("/test-peer", peer)  # type: ignore[attr-defined]
            answer = stack.client.get("/test-peer", headers=HTTPS)
        assert answer.json() == {"client": expected}


@pytest.mark.parametrize("value", ['["10.0.0.1/8"]', '["proxy.example"]', "10.0.0.0/8"])
def test_a_malformed_proxy_address_stops_the_start(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINMATCH_TRUSTED_PROXIES", value)
    with pytest.raises((ValidationError, ValueError), match="trusted_proxies"):
        GatewaySettings()


@contextmanager
def gateway_process(**settings: str) -> Iterator[str]:
    """``python -m services.gateway.cli`` on a free loopback port, with no registry behind it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINMATCH_")}
    env |= {
        "FINMATCH_GATEWAY_PORT": str(port),
        "FINMATCH_REGISTRY_URL": f"http://127.0.0.1:{free_port()}",
        "FINMATCH_MATCHING_URL": f"http://127.0.0.1:{free_port()}",
        "FINMATCH_GC_FREEZE": "false",
        "FORWARDED_ALLOW_IPS": "*",  # uvicorn's own setting: must not matter
        **settings,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.gateway.cli"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def forgotten_cookie(url: str) -> set[str]:
    answer = httpx.get(
        f"{url}/dashboard", headers=HTTPS, cookies={SESSION_COOKIE: STALE_SESSION}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    return {part.strip().lower() for part in cookie.split(";")}


@pytest.mark.parametrize(("trusted", "secure"), [(None, True), ("[]", False)])
def test_the_served_gateway_trusts_exactly_the_setting(trusted: str | None, secure: bool) -> None:
    """The real process: the default trusts this loopback peer, an empty list nobody (and
    uvicorn's FORWARDED_ALLOW_IPS adds nothing)."""
    settings = {} if trusted is None else {"FINMATCH_TRUSTED_PROXIES": trusted}
    with gateway_process(**settings) as url:
        assert ("secure" in forgotten_cookie(url)) is secure
