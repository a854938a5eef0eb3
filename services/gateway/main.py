"""Gateway app factory: downstream clients, cache, limits and idempotency in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.gateway.api import (
    admin,
    applications,
    consents,
    decisions,
    firms,
    matches,
    products,
    reference,
    registers,
    stats,
    webhooks,
)
from services.gateway.auth import KnownKeys
from services.gateway.cache import make_cache
from services.gateway.catalogue import CatalogueProvider
from services.gateway.clients import CircuitBreaker, MatchingClient, RegistryClient
from services.gateway.config import GatewaySettings, get_settings
from services.gateway.dashboard import router as dashboard
from services.gateway.idempotency import IdempotencyStore
from services.gateway.metrics import GatewayCollector
from services.gateway.middleware import (
    STREAMING_PATHS,
    BodyLimitMiddleware,
    RequestContextMiddleware,
)
from services.gateway.model_version import refresh_model_version
from services.gateway.openapi import install_openapi
from services.gateway.ratelimit import RateLimiter
from services.gateway.recorder import MatchEventRecorder
from shared.errors import install_error_handlers, problem_responses
from shared.heap import freeze_startup_heap
from shared.metrics import mount_metrics

log = logging.getLogger("finmatch.gateway")
IDEMPOTENCY_MIN_REDIS_TIMEOUT_SECONDS = 2.0


def create_app(
    settings: GatewaySettings | None = None,
    *,
    registry_transport: httpx.AsyncBaseTransport | None = None,
    matching_transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> FastAPI:
    """``clock`` times in-process caches, rate windows, idempotency keys and Redis retries;
    ``wall_clock`` dates the answers kept for stale-if-error (tests pass fakes)."""
    settings = settings or get_settings()
    settings.check_secrets()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = app.state
        prefix = settings.redis_prefix
        timeout = settings.redis_timeout_seconds
        state.cache = make_cache(
            settings.redis_url,
            prefix=prefix,
            connect_timeout=timeout,
            op_timeout=timeout,
            clock=clock,
        )
        state.limiter = RateLimiter(
            settings.redis_url,
            prefix=f"{prefix}rl:",
            connect_timeout=timeout,
            op_timeout=timeout,
            clock=clock,
        )
        state.known_keys = KnownKeys(settings.key_cache_seconds)
        # No shorter than the cache's, and at least 2 s: a spurious fall-back to the
        # per-process store while another request holds the key in Redis would let a
        # duplicate through.
        idempotency_timeout = max(timeout, IDEMPOTENCY_MIN_REDIS_TIMEOUT_SECONDS)
        state.idempotency = IdempotencyStore(
            settings.redis_url,
            prefix=f"{prefix}idem:",
            connect_timeout=idempotency_timeout,
            op_timeout=idempotency_timeout,
            clock=clock,
        )
        state.registry = RegistryClient(
            settings.registry_url,
            settings.internal_token,
            timeout=httpx.Timeout(settings.registry_timeout_seconds, connect=2.0),
            breaker=_breaker(settings),
            transport=registry_transport,
        )
        state.matching = MatchingClient(
            settings.matching_url,
            settings.internal_token,
            timeout=httpx.Timeout(settings.matching_timeout_seconds, connect=1.0),
            breaker=_breaker(settings),
            transport=matching_transport,
        )
        state.catalogue = CatalogueProvider(
            state.cache, state.registry, settings.catalogue_cache_seconds
        )
        state.recorder = MatchEventRecorder(state.registry)
        state.recorder.start()
        state.model_version = "unknown"
        watcher = asyncio.create_task(_watch_model_version(app))
        freeze_startup_heap(settings.gc_freeze)
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await state.recorder.stop()
            for resource in (
                state.registry,
                state.matching,
                state.cache,
                state.limiter,
                state.idempotency,
            ):
                await resource.aclose()

    app = FastAPI(
        title="finmatch API",
        version="1.0.0",
        description=(
            "SME financing matchmaking for Dongguan (东金〔2020〕75号, items 53–76).\n\n"
            "Authenticate with `Authorization: Bearer <API key>`. Every key belongs to one "
            "principal (portal, institution, official or admin); anything outside its scope "
            "answers 404. A key past its `expires_at` answers 401 `key_expired`, an unknown "
            "or revoked one 401 `invalid_key`; after repeated failures from one address or "
            "on one key prefix, 429 `auth_throttled` with Retry-After. To rotate a key, issue "
            "a new one for the same principal; the old one works until revoked or expired. "
            "Errors are problem details (RFC 9457) with a machine-readable "
            "`code`. Lists are paginated with `limit` and `cursor`. Every POST honours "
            "`Idempotency-Key` (24 h).\n\n"
            "Updates are optimistic: a firm or product answered by GET, POST or PATCH comes "
            "with its `ETag`, and every PATCH (firms and products alike) requires `If-Match` "
            "with it: 428 without, 412 when the record changed since it was read. "
            "`If-Match: *` is the explicit choice to update whatever version is current.\n\n"
            "Bodies are strict JSON: a flag is `true`/`false`, a count or an amount a JSON "
            "integer (a float field takes `5` for `5.0`), a text field a string, a date an "
            "ISO 8601 string (`2015-03-01`), an enum its string value; nothing is coerced. "
            'An object that names a key twice is refused (not read as "the last one wins"). '
            "Either is a 422 whose `errors` name the field (a repeated key by its path), and "
            "each NDJSON line of a bulk import is held to the same rules.\n\n"
            "东莞中小微企业融资匹配服务。"
        ),
        lifespan=lifespan,
        responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 429, 502, 503, 504),
    )
    app.state.settings = settings
    # Wall-clock time for keys (expiry, how long a resolution is held) and stale answers'
    # ages; tests replace it.
    app.state.wall_clock = wall_clock
    app.state.bootstrap_admin = _bootstrap_admin_loader(app)
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, streaming_paths=STREAMING_PATHS
    )
    app.add_middleware(RequestContextMiddleware)
    for module in (
        firms,
        consents,
        matches,
        products,
        applications,
        decisions,
        registers,
        stats,
        admin,
        reference,
        webhooks,
    ):
        app.include_router(module.router)
    app.include_router(dashboard.router)
    app.mount(dashboard.STATIC_PATH, dashboard.static_files(), name="dashboard-static")

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers; no dependency is touched."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """Ready when the registry answers; Redis and matching may be degraded."""
        state = app.state
        registry_ok, matching_ok, redis = await asyncio.gather(
            state.registry.ready(), state.matching.ready(), _redis_check(app)
        )
        checks = {
            "registry": "ok" if registry_ok else "down",
            "matching": "ok" if matching_ok else "down: matches served stale where held, else 503",
            "redis": redis,
        }
        status = 200 if registry_ok else 503
        headers = {} if registry_ok else {"Retry-After": "5"}
        return JSONResponse(
            {"status": "ok" if registry_ok else "unavailable", "checks": checks},
            status_code=status,
            headers=headers,
        )

    mount_metrics(app, "gateway", GatewayCollector(app), tags=["operations"])
    install_openapi(app)
    # Outermost, so that everything inside sees the client's scheme and address as the trusted
    # proxy forwarded them (the CLI turns uvicorn's own copy of this middleware off).
    app.add_middleware(
        ProxyHeadersMiddleware, trusted_hosts=[str(net) for net in settings.trusted_proxies]
    )
    return app


def _breaker(settings: GatewaySettings) -> CircuitBreaker:
    return CircuitBreaker(
        settings.breaker_failures,
        settings.breaker_reset_seconds,
        max_reset_seconds=settings.breaker_max_reset_seconds,
    )


async def _redis_check(app: FastAPI) -> str:
    """Asks Redis now rather than reporting the last request's experience: a Redis that was
    never reached (or has come back) would otherwise be reported wrongly until some request
    touched it. A successful ping also ends an outage at once."""
    state = app.state
    if not state.settings.redis_url:
        return "not configured"
    answers = await asyncio.gather(
        state.cache.ping(), state.limiter.ping(), state.idempotency.ping()
    )
    return "ok" if all(answers) else "degraded: in-process fallback"


def _bootstrap_admin_loader(app: FastAPI) -> Any:
    """The bootstrap admin's principal, fetched from the registry once (lazily, so a registry
    that is down at start-up does not stop the gateway from starting)."""
    held: dict[str, Any] = {}
    lock = asyncio.Lock()

    async def load() -> dict[str, Any]:
        if "principal" not in held:
            async with lock:
                if "principal" not in held:
                    held["principal"] = await app.state.registry.bootstrap_admin()
        principal: dict[str, Any] = held["principal"]
        return principal

    return load


async def _watch_model_version(app: FastAPI) -> None:
    # Promotions made through this gateway refresh at once (admin routes); others, made on
    # another replica or by automatic retraining, are seen within the poll interval.
    while True:
        await refresh_model_version(app)
        await asyncio.sleep(app.state.settings.model_poll_seconds)
