"""The dashboard page and its sign-in and sign-out; the page's data comes from /v1/stats/*."""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from services.gateway import auth_failures
from services.gateway.auth import Forbidden, Principal, principal_for_key, resolve_digest
from services.gateway.dashboard.sessions import (
    DASHBOARD_HEADER,
    SESSION_COOKIE,
    SESSION_SECONDS,
    close_session,
    open_session,
    session_key_digest,
)
from services.gateway.metrics import AuthFailure
from shared.criteria import WHAT_IF, Unit
from shared.enums import PrincipalRole
from shared.error_codes import ErrorCode
from shared.errors import ProblemError, TooManyRequests, Unauthorized, problem_response
from shared.vocab.categories import CATEGORIES
from shared.vocab.size_class import SizeClass
from shared.vocab.towns import TOWNS, TOWNS_BY_CODE

log = logging.getLogger("finmatch.gateway.dashboard")

router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)

HERE = Path(__file__).parent
STATIC_PATH = "/dashboard/static"
DASHBOARD_ROLES = (PrincipalRole.OFFICIAL, PrincipalRole.ADMIN)
MAX_SIGNIN_BODY = 4096
# Sign-in attempts per client address and minute: keys are random, so this only keeps a
# script from turning the form into a stream of registry look-ups.
SIGNIN_ATTEMPTS = 20
SIGNIN_WINDOW_SECONDS = 60
# Self only: scripts and styles are files of this package, data comes from this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# "same-origin", not "no-referrer": under no-referrer a browser sends "Origin: null" with the
# sign-in form, which the cross-site check must refuse.
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
# The what-if criteria the panel has an input for: every threshold, and the size classes
# (it has no picker for industry sections; the API takes those).
WHAT_IF_CRITERIA = tuple(c for c in WHAT_IF.values() if not c.is_list or c.unit is Unit.SIZE)
SIZE_CLASS_NAMES = {
    SizeClass.LARGE: ("大型", "Large"),
    SizeClass.MEDIUM: ("中型", "Medium"),
    SizeClass.SMALL: ("小型", "Small"),
    SizeClass.MICRO: ("微型", "Micro"),
}
# Why a sign-in was refused: the form shows the Chinese text (the page's script switches it
# to English), a JSON client gets the English one as a problem's detail.
SIGNIN_ERRORS = {
    "invalid_key": ("密钥无效或已吊销。", "unknown or revoked key"),
    "not_official": (
        "只有政府部门（官员）和管理员的密钥可以登录看板。",
        "only officials' and admins' keys can sign in to the dashboard",
    ),
    "rate_limited": ("尝试次数过多，请稍后再试。", "too many attempts; try again in a minute"),
    "bad_request": ("请输入密钥。", "send the key as the form field or JSON member 'key'"),
    "cross_site": ("请从本站的登录页登录。", "sign in from this site's own page"),
    "unavailable": ("服务暂时不可用，请稍后再试。", "the service is unavailable; try again"),
}


def static_files() -> StaticFiles:
    """The page's scripts and styles (mounted at STATIC_PATH by the app factory)."""
    return StaticFiles(directory=HERE / "static")


def _template(name: str) -> str:
    return (HERE / "templates" / name).read_text(encoding="utf-8")


@router.get("", response_class=HTMLResponse)
async def page(request: Request) -> Response:
    """The dashboard for a signed-in official or admin; the sign-in form for anyone else."""
    try:
        principal = await _session_principal(request)
    except ProblemError:  # the registry cannot say whose session this is right now
        return _signin_page("unavailable", 503)
    if principal is None:
        answer = _signin_page(None, 200)
        if request.cookies.get(SESSION_COOKIE):
            _forget_cookie(answer, request)
        return answer
    context = await _context(request, principal)
    # JSON inside <script type="application/json">: "<" escaped so no "</script>" can end it.
    embedded = orjson.dumps(context).decode().replace("<", "\\u003c")
    body = _template("dashboard.html").replace("{{context}}", embedded)
    return HTMLResponse(body, headers=PAGE_HEADERS)


@router.post("/session")
async def sign_in(request: Request) -> Response:
    """Exchange an official's or admin's key (form field or JSON ``key``) for a session cookie."""
    wants_json = request.headers.get("content-type", "").startswith("application/json")
    try:
        if not _same_origin(request):
            raise _SignInRefused(ErrorCode.CROSS_SITE, 403)
        await _limit_attempts(request)
        key = await _posted_key(request, wants_json)
        try:
            principal = await principal_for_key(request, key)
        except Unauthorized as exc:
            # A security event like a wrong API key (the attempts are limited just above).
            auth_failures.record(auth_failures.Attempt.of(request, key), _failure(exc.code))
            raise _SignInRefused(ErrorCode.INVALID_KEY, 401) from exc
        except ProblemError as exc:
            raise _SignInRefused(ErrorCode.UNAVAILABLE, 503) from exc
        if principal.role not in DASHBOARD_ROLES:
            raise _SignInRefused(ErrorCode.NOT_OFFICIAL, 403)
    except _SignInRefused as refused:
        if wants_json:
            body = {
                "type": f"https://finmatch.example/problems/{refused.code}",
                "title": "Sign-in refused",
                "status": refused.status,
                "code": refused.code,
                "detail": SIGNIN_ERRORS[refused.code][1],
            }
            return problem_response(refused.status, body)
        return _signin_page(refused.code, refused.status)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await close_session(request.app.state.cache, old)
    session_id = await open_session(request.app.state.cache, principal.key_digest, principal.id)
    log.info("dashboard sign-in principal=%s", principal.id)
    answer: Response
    if wants_json:
        answer = JSONResponse({"signed_in": True, "principal": _describe(principal)})
    else:
        answer = RedirectResponse("/dashboard", status_code=303)
    answer.headers["Cache-Control"] = "no-store"
    answer.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


@router.delete("/session", status_code=204)
async def sign_out(request: Request) -> Response:
    """End the session: the cookie is dead from now on, on every replica sharing the cache.

    Like every other write by cookie it needs the dashboard's header, which another site's page
    cannot send: otherwise any page could sign an official out (a logout CSRF).
    """
    if request.headers.get(DASHBOARD_HEADER) != "1":
        raise Forbidden(
            f"signing out needs the header {DASHBOARD_HEADER}: 1",
            code=ErrorCode.CSRF_HEADER_MISSING,
        )
    await _end_session(request)
    answer = Response(status_code=204)
    _forget_cookie(answer, request)
    return answer


def _failure(code: str | None) -> AuthFailure:
    return "expired_key" if code == "key_expired" else "unknown_key"


class _SignInRefused(Exception):
    def __init__(self, code: ErrorCode, status: int) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


async def _posted_key(request: Request, wants_json: bool) -> str:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_SIGNIN_BODY:  # a key is short; read no further
            raise _SignInRefused(ErrorCode.BAD_REQUEST, 400)
    key: object = None
    try:
        if wants_json:
            body = orjson.loads(raw)
            key = body.get("key") if isinstance(body, dict) else None
        else:
            values = parse_qs(raw.decode()).get("key", [])
            key = values[0] if values else None
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _SignInRefused(ErrorCode.BAD_REQUEST, 400) from exc
    if not isinstance(key, str) or not key.strip():
        raise _SignInRefused(ErrorCode.BAD_REQUEST, 400)
    return key


async def _limit_attempts(request: Request) -> None:
    client = request.client.host if request.client else "unknown"
    decision = await request.app.state.limiter.hit(
        f"signin:{client}", SIGNIN_ATTEMPTS, SIGNIN_WINDOW_SECONDS
    )
    if not decision.allowed:
        raise _SignInRefused(ErrorCode.RATE_LIMITED, TooManyRequests.status)


def _same_origin(request: Request) -> bool:
    """A browser names the page a form was posted from; another site's page may not sign in."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent by a browser's cross-site form (or by no browser at all)
    host = request.headers.get("host", "")
    return origin in (f"{request.url.scheme}://{host}", f"http://{host}", f"https://{host}")


async def _session_principal(request: Request) -> Principal | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    digest = await session_key_digest(request.app.state.cache, session_id)
    if digest is None:
        return None
    try:
        principal = await resolve_digest(request, digest)
    except Unauthorized:
        await close_session(request.app.state.cache, session_id)  # the key was revoked
        return None
    return principal if principal.role in DASHBOARD_ROLES else None


async def _end_session(request: Request) -> None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await close_session(request.app.state.cache, session_id)


def _forget_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _signin_page(error: str | None, status: int) -> HTMLResponse:
    message = ""
    if error is not None:
        text = html.escape(SIGNIN_ERRORS[error][0])
        message = (
            f'<p class="error" id="signin-error" role="alert" '
            f'data-i18n="signin_error_{html.escape(error)}">{text}</p>'
        )
    body = _template("signin.html").replace("{{error}}", message)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def _describe(principal: Principal) -> dict[str, Any]:
    town = TOWNS_BY_CODE.get(principal.town_code or "")
    return {
        "name": principal.name,
        "role": principal.role.value,
        "town_code": principal.town_code,
        "town_zh": None if town is None else town.name_zh,
        "town_en": None if town is None else town.pinyin,
    }


async def _context(request: Request, principal: Principal) -> dict[str, Any]:
    """What the page needs besides the statistics: who is signed in and the vocabulary."""
    return {
        "principal": _describe(principal),
        "towns": [{"code": t.code, "zh": t.name_zh, "en": t.pinyin} for t in TOWNS],
        "categories": [
            {"code": c.category.value, "zh": c.name_zh, "en": c.name_en, "plan_items": c.plan_items}
            for c in CATEGORIES.values()
        ],
        "size_classes": [
            {"code": size.value, "zh": zh, "en": en} for size, (zh, en) in SIZE_CLASS_NAMES.items()
        ],
        "what_if_criteria": [
            {"code": c.what_if, "zh": c.label[0], "en": c.label[1], "list": c.is_list}
            for c in WHAT_IF_CRITERIA
        ],
        "products": await _products(request),
    }


async def _products(request: Request) -> list[dict[str, Any]]:
    """The active products with the criteria the what-if panel can change (none if unavailable)."""
    try:
        catalogue = await request.app.state.catalogue.get()
    except ProblemError as exc:
        log.warning("dashboard without products for the what-if panel: %s", exc.detail)
        return []
    return [
        {
            "id": int(product["id"]),
            "name": str(product.get("name") or f"#{product['id']}"),
            "category": product.get("category"),
            "criteria": {c.what_if: product.get(c.product_field) for c in WHAT_IF_CRITERIA},
        }
        for product in sorted(catalogue.products, key=lambda p: (str(p.get("category")), p["id"]))
    ]
