"""Dashboard sign-in: who may sign in, what the session cookie opens (statistics only), the
CSRF header on writes and on sign-out, revocation, and the page's security headers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.gateway.auth import CurrentPrincipal
from services.gateway.dashboard.sessions import SESSION_COOKIE
from tests.gateway.conftest import Stack, registry_app, running_stack
from tests.gateway.test_degradation import Switchable
from tests.services import need_redis

TOWN = "441900116"  # 塘厦镇
OTHER_TOWN = "441900003"  # 东城街道
STATIC = Path(__file__).resolve().parents[2] / "services" / "gateway" / "dashboard"


def sign_in(client: TestClient, key: str, **headers: str) -> Any:
    return client.post(
        "/dashboard/session", data={"key": key}, headers=headers, follow_redirects=False
    )


def use_session(client: TestClient, session_id: str) -> TestClient:
    """The client's cookie jar holds just this session (as a browser would send it)."""
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, session_id)
    return client


def test_official_signs_in_and_the_cookie_opens_the_statistics(stack: Stack) -> None:
    official = stack.principal("official", town_code=TOWN)
    answer = sign_in(stack.client, official.key)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/dashboard"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain http here; https gets Secure
    session_id = stack.client.cookies[SESSION_COOKIE]
    assert official.key not in session_id

    by_cookie = stack.client.get("/v1/stats/breakdown", params={"by": "category"})
    assert by_cookie.status_code == 200, by_cookie.text
    by_key = official.get("/v1/stats/breakdown", params={"by": "category"})
    assert by_cookie.json() == by_key.json()

    page = stack.client.get("/dashboard")
    assert page.status_code == 200
    assert 'id="context"' in page.text
    assert official.key not in page.text
    assert "Content-Security-Policy" in page.headers
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert page.headers["cache-control"] == "no-store"


def test_cookie_does_not_open_anything_but_statistics(stack: Stack) -> None:
    official = stack.principal("official")
    assert sign_in(stack.client, official.key).status_code == 303
    for path in ("/v1/firms", "/v1/products", "/v1/applications", "/v1/reference/towns"):
        answer = stack.client.get(path)
        assert answer.status_code == 401, (path, answer.text)
        assert answer.json()["code"] == "missing_key"


def test_a_key_in_the_header_wins_over_the_cookie(stack: Stack) -> None:
    official = stack.principal("official")
    assert sign_in(stack.client, official.key).status_code == 303
    answer = stack.client.get(
        "/v1/stats/breakdown",
        params={"by": "town"},
        headers={"Authorization": "Bearer not-a-real-key"},
    )
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_key"


def test_town_official_by_cookie_cannot_reach_another_town(stack: Stack) -> None:
    official = stack.principal("official", town_code=TOWN)
    assert sign_in(stack.client, official.key).status_code == 303
    own = stack.client.get("/v1/stats/breakdown", params={"by": "month", "town_code": TOWN})
    assert own.status_code == 200, own.text
    other = stack.client.get("/v1/stats/breakdown", params={"by": "month", "town_code": OTHER_TOWN})
    assert other.status_code == 404


@pytest.mark.parametrize("role", ["portal", "institution"])
def test_only_officials_and_admins_can_sign_in(stack: Stack, role: str) -> None:
    api = stack.institution("某银行") if role == "institution" else stack.principal(role)
    answer = sign_in(stack.client, api.key)
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers
    assert SESSION_COOKIE not in stack.client.cookies
    assert api.key not in answer.text
    as_json = stack.client.post("/dashboard/session", json={"key": api.key})
    assert as_json.status_code == 403
    assert as_json.json()["code"] == "not_official"


def test_admin_and_bootstrap_admin_can_sign_in(stack: Stack) -> None:
    admin = stack.principal("admin")
    answer = stack.client.post("/dashboard/session", json={"key": admin.key})
    assert answer.status_code == 200, answer.text
    assert answer.json()["principal"]["role"] == "admin"
    assert admin.key not in answer.text
    assert sign_in(stack.client, stack.admin.key).status_code == 303  # the bootstrap key
    assert stack.client.get("/v1/stats/breakdown", params={"by": "town"}).status_code == 200


def test_unknown_or_malformed_keys_are_refused(stack: Stack) -> None:
    assert sign_in(stack.client, "fm_offi_" + "x" * 40).status_code == 401
    assert sign_in(stack.client, "ключ").status_code == 401
    assert sign_in(stack.client, "").status_code == 400
    assert (
        stack.client.post(
            "/dashboard/session", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    refused = sign_in(stack.client, "fm_offi_wrong")
    assert "密钥无效" in refused.text
    assert SESSION_COOKIE not in stack.client.cookies


def test_sign_in_from_another_site_is_refused(stack: Stack) -> None:
    official = stack.principal("official")
    answer = sign_in(stack.client, official.key, origin="https://evil.example")
    assert answer.status_code == 403
    assert SESSION_COOKIE not in stack.client.cookies
    assert sign_in(stack.client, official.key, origin="http://testserver").status_code == 303


def test_a_write_by_cookie_needs_the_dashboard_header(stack: Stack) -> None:
    async def probe(principal: CurrentPrincipal) -> dict[str, int]:
        return {"principal": principal.id}

    stack.client.app.add_api_route("/v1/stats/test-probe", probe, methods=["POST"])  # type: ignore[attr-defined]
    official = stack.principal("official")
    assert sign_in(stack.client, official.key).status_code == 303
    refused = stack.client.post("/v1/stats/test-probe")
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_header_missing"
    allowed = stack.client.post("/v1/stats/test-probe", headers={"X-Finmatch-Dashboard": "1"})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"principal": official.principal_id}  # type: ignore[attr-defined]
    # A key needs no such header: it cannot be sent by another site's page.
    stack.client.cookies.clear()
    by_key = official.post("/v1/stats/test-probe")
    assert by_key.status_code == 200


def test_signed_out_cookie_is_dead(stack: Stack) -> None:
    official = stack.principal("official")
    assert sign_in(stack.client, official.key).status_code == 303
    session_id = stack.client.cookies[SESSION_COOKIE]
    answer = stack.client.delete("/dashboard/session", headers={"X-Finmatch-Dashboard": "1"})
    assert answer.status_code == 204
    assert f"{SESSION_COOKIE}=" in answer.headers["set-cookie"]
    assert "max-age=0" in answer.headers["set-cookie"].lower()
    replayed = use_session(stack.client, session_id).get(
        "/v1/stats/breakdown", params={"by": "town"}
    )
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "invalid_session"
    page = use_session(stack.client, session_id).get("/dashboard")
    assert 'action="/dashboard/session"' in page.text  # the sign-in form again


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        # What another site's page can send: a form's POST (the old form route included), or
        # a DELETE without the header (with it, the browser would ask a CORS preflight first).
        ("POST", "/dashboard/session/delete", {"origin": "https://evil.example"}),
        ("POST", "/dashboard/session/delete", {}),
        ("DELETE", "/dashboard/session", {"origin": "https://evil.example"}),
        ("DELETE", "/dashboard/session", {}),
    ],
)
def test_sign_out_without_the_dashboard_header_is_refused(
    stack: Stack, method: str, path: str, headers: dict[str, str]
) -> None:
    """A logout CSRF: another site's page must not end an official's session."""
    official = stack.principal("official")
    assert sign_in(stack.client, official.key).status_code == 303
    session_id = stack.client.cookies[SESSION_COOKIE]
    answer = stack.client.request(method, path, headers=headers, follow_redirects=False)
    # The form route is gone (404); a DELETE without the header is refused (403).
    assert answer.status_code == (403 if method == "DELETE" else 404), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    if method == "DELETE":
        assert answer.json()["code"] == "csrf_header_missing"
    assert "set-cookie" not in answer.headers
    still = use_session(stack.client, session_id).get("/v1/stats/breakdown", params={"by": "town"})
    assert still.status_code == 200, still.text


def test_revoking_the_key_ends_its_sessions(stack: Stack) -> None:
    created = stack.admin.post("/v1/admin/principals", json={"role": "official", "name": "o"})
    key = stack.admin.post("/v1/admin/keys", json={"principal_id": created.json()["id"]}).json()
    assert sign_in(stack.client, key["key"]).status_code == 303
    assert stack.client.get("/v1/stats/breakdown", params={"by": "town"}).status_code == 200
    revoked = stack.admin.post(f"/v1/admin/keys/{key['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    answer = stack.client.get("/v1/stats/breakdown", params={"by": "town"})
    assert answer.status_code == 401
    assert 'action="/dashboard/session"' in stack.client.get("/dashboard").text


def test_forged_session_ids_are_refused(stack: Stack) -> None:
    for forged in ("x" * 43, "../../etc", "x" * 42 + "!", "%E4%BC%9A" * 5):
        answer = use_session(stack.client, forged).get("/v1/stats/breakdown", params={"by": "town"})
        assert answer.status_code == 401


@pytest.mark.redis
def test_sessions_are_shared_by_replicas_on_one_redis(stack: Stack) -> None:
    """Signed in through one gateway replica, the cookie works on another sharing Redis."""
    redis_url = need_redis()
    prefix = "finmatch-test-dashboard-sessions:"
    with (
        running_stack(stack.engine, redis_url=redis_url, redis_prefix=prefix) as first,
        running_stack(stack.engine, redis_url=redis_url, redis_prefix=prefix) as second,
    ):
        official = first.principal("official", town_code=TOWN)
        assert sign_in(first.client, official.key).status_code == 303
        session_id = first.client.cookies[SESSION_COOKIE]
        other = use_session(second.client, session_id)
        answer = other.get("/v1/stats/breakdown", params={"by": "month"})
        assert answer.status_code == 200, answer.text
        signed_out = other.delete("/dashboard/session", headers={"X-Finmatch-Dashboard": "1"})
        assert signed_out.status_code == 204
        gone = use_session(first.client, session_id).get(
            "/v1/stats/breakdown", params={"by": "month"}
        )
        assert gone.status_code == 401


def test_page_assets_are_served_and_nothing_comes_from_elsewhere(stack: Stack) -> None:
    page = stack.client.get("/dashboard")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets, page.text
    for asset in (a for a in assets if not a.startswith("#")):
        assert asset.startswith("/dashboard/"), asset
        assert stack.client.get(asset).status_code == 200, asset
    for module in ("dashboard.js", "charts.js", "tables.js", "whatif.js", "i18n.js"):
        assert stack.client.get(f"/dashboard/static/{module}").status_code == 200
    svg_namespace = "http://www.w3.org/2000/svg"
    for path in [*STATIC.glob("static/*"), *STATIC.glob("templates/*")]:
        text = path.read_text(encoding="utf-8").replace(svg_namespace, "")
        assert not re.search(r"https?://|//cdn|@import|@font-face", text), path
    css = (STATIC / "static" / "dashboard.css").read_text(encoding="utf-8")
    assert '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif' in css
    assert "@media print" in css


def test_registry_down_degrades_the_page_not_the_gateway(engine: Engine) -> None:
    switch = Switchable(httpx.ASGITransport(app=registry_app(engine)))
    with running_stack(engine, registry_transport=switch, breaker_failures=1000) as stack:
        signed_in = stack.principal("official")
        newcomer = stack.principal("official")
        assert sign_in(stack.client, signed_in.key).status_code == 303
        switch.down = True
        page = stack.client.get("/dashboard")  # the key is cached: the page, without products
        assert page.status_code == 200, page.text
        assert '"products":[]' in page.text
        stack.client.cookies.clear()
        refused = sign_in(stack.client, newcomer.key)
        assert refused.status_code == 503
        assert "服务暂时不可用" in refused.text
        assert SESSION_COOKIE not in stack.client.cookies


def test_a_wrong_key_at_sign_in_is_a_security_event(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Like a wrong API key: one line on finmatch.security with the address and the prefix,
    never the key itself."""
    wrong = "fm_offi_" + "q" * 40
    with caplog.at_level("WARNING", logger="finmatch.security"):
        assert sign_in(stack.client, wrong).status_code == 401
    events = [r for r in caplog.records if r.name == "finmatch.security"]
    assert len(events) == 1, events
    assert events[0].__dict__["reason"] == "unknown_key"
    assert events[0].__dict__["key_prefix"] == wrong[:12]
    assert wrong not in caplog.text
