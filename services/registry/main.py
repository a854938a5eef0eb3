"""Registry app factory: engine in the lifespan, routers, problem-details errors, probes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from services.registry.api import (
    access,
    applications,
    consents,
    decisions,
    firms,
    internal,
    models,
    products,
    registers,
    stats,
    training_jobs,
    webhook_deliveries,
    webhooks,
)
from services.registry.api.deps import require_internal_token
from services.registry.config import RegistrySettings, get_settings
from services.registry.db import PoolCollector, make_engine
from services.registry.firm_cache import FirmCache
from services.registry.outage import OutageMonitor, install_outage_handlers, is_unavailable
from services.registry.validation_pool import ValidationPool
from shared.access_log import AccessLogMiddleware
from shared.errors import install_error_handlers
from shared.heap import freeze_startup_heap
from shared.internal_docs import serve_internal_openapi
from shared.metrics import mount_metrics

log = logging.getLogger("finmatch.registry")


def create_app(
    settings: RegistrySettings | None = None,
    engine: Engine | None = None,
    validation_pool: ValidationPool | None = None,
) -> FastAPI:
    """The registry; tests may hand in an ``engine`` and a ``validation_pool`` (theirs to
    close) instead of those the lifespan builds from the settings."""
    settings = settings or get_settings()
    settings.check_secrets()
    owns_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = engine or make_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            connect_timeout_seconds=settings.db_connect_timeout_seconds,
            pool_timeout_seconds=settings.db_pool_timeout_seconds,
        )
        stop_watching = outage.watch(app.state.engine)
        firm_cache = app.state.firm_cache = _firm_cache(settings)
        retrying = None
        if firm_cache is not None:
            retrying = asyncio.create_task(
                _replay_firm_entries(firm_cache, settings.firm_entry_retry_seconds)
            )
        processes = settings.bulk_validate_workers
        pool = None
        if validation_pool is not None:
            app.state.validation_pool = validation_pool
        elif processes:
            pool = app.state.validation_pool = ValidationPool(processes)
            pool.warm()  # its workers start now, not during the first import
        freeze_startup_heap(settings.gc_freeze)
        try:
            yield
        finally:
            stop_watching()
            if retrying is not None:
                retrying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retrying
            if firm_cache is not None:
                firm_cache.close()
            if pool is not None:
                await run_in_threadpool(pool.shutdown)
            if owns_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="finmatch registry (internal)",
        version="0.1.0",
        description="System of record for firms, institutions, products and applications. "
        "Internal: every route needs X-Internal-Token; resource routes act for X-Principal-Id.",
        lifespan=lifespan,
        # No /docs or /redoc, and /openapi.json only with the internal token (see below).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    # Set early too, so that code using app.state before startup (tests) finds them.
    app.state.settings = settings
    app.state.principals = {}  # id → Principal, read once (principals are immutable)
    app.state.firm_cache = None  # set in the lifespan when FINMATCH_REDIS_URL is
    app.state.validation_pool = validation_pool  # else built in the lifespan (processes > 0)
    if engine is not None:
        app.state.engine = engine
    install_error_handlers(app)
    outage = OutageMonitor()
    app.state.outage = outage
    install_outage_handlers(app, outage, settings.db_retry_after_seconds)
    app.add_middleware(AccessLogMiddleware)
    guarded = [
        firms.router,
        consents.router,
        products.router,
        applications.router,
        decisions.router,
        access.router,
        stats.router,
        webhooks.router,
        webhook_deliveries.router,
        registers.router,
    ]
    for router in guarded:
        app.include_router(router, dependencies=[Depends(require_internal_token)])
    app.include_router(access.internal)
    app.include_router(internal.router)
    app.include_router(stats.internal)
    app.include_router(models.router)
    app.include_router(training_jobs.router)

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers. Touches no dependency."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"])
    async def readyz() -> JSONResponse:
        """Readiness: the database answers a query (within the connect and pool timeouts)."""
        try:
            await run_in_threadpool(_ping, app.state.engine)
        except Exception as exc:
            if is_unavailable(exc):
                outage.failed(exc)  # logged once per outage, not once per probe
            else:
                log.warning("readiness: database check failed: %s", exc)
            return JSONResponse(
                {"status": "unavailable", "checks": {"database": "down"}},
                status_code=503,
                headers={"Retry-After": str(settings.db_retry_after_seconds)},
            )
        outage.recovered()
        return JSONResponse({"status": "ok", "checks": {"database": "ok"}})

    serve_internal_openapi(app)
    # Open like the probes: the scraper has no token; the NetworkPolicies decide who reaches it.
    mount_metrics(app, "registry", PoolCollector(lambda: getattr(app.state, "engine", None)))
    return app


def _firm_cache(settings: RegistrySettings) -> FirmCache | None:
    if not settings.redis_url:
        return None
    return FirmCache(
        settings.redis_url,
        prefix=settings.redis_prefix,
        ttl_seconds=settings.firm_entry_ttl_seconds,
        timeout_seconds=settings.redis_timeout_seconds,
    )


async def _replay_firm_entries(firm_cache: FirmCache, every_seconds: float) -> None:
    """The lease on the firm entries renewed, and writes that did not reach Redis tried again
    until they do (see firm_cache)."""
    lease_seconds = max(3 * every_seconds, 3.0)
    while True:
        await run_in_threadpool(firm_cache.keep_lease, lease_seconds)
        await asyncio.sleep(every_seconds)


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
