"""Matching app factory: the model manager and catalogue cache in the lifespan, probes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from services.matching.api import models, policy, rank
from services.matching.config import MatchingSettings, get_settings
from services.matching.events import event_bus
from services.matching.firm_feed import FirmFeed
from services.matching.lifecycle import ModelManager
from services.matching.metrics import MatchingCollector
from services.matching.ranking import CatalogueCache
from services.matching.registry_client import RegistryClient
from shared.access_log import AccessLogMiddleware
from shared.errors import install_error_handlers
from shared.heap import freeze_startup_heap
from shared.internal import require_internal_token
from shared.internal_docs import serve_internal_openapi
from shared.metrics import mount_metrics

log = logging.getLogger("finmatch.matching")


def create_app(
    settings: MatchingSettings | None = None,
    *,
    registry: RegistryClient | None = None,
    manager: ModelManager | None = None,
) -> FastAPI:
    """The app; tests may hand in a ``manager`` (then it is usable before the lifespan runs)."""
    settings = settings or get_settings()
    settings.check_secrets()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manager is not None:
            await manager.refresh()
            yield
            return
        client = registry or RegistryClient(
            settings.registry_url,
            settings.internal_token,
            timeout=settings.registry_timeout_seconds,
        )
        bus = event_bus(settings.redis_url)
        models = ModelManager(settings=settings, registry=client, bus=bus)
        app.state.models = models
        await models.refresh()
        models.start()
        freeze_startup_heap(settings.gc_freeze)
        warming = (
            asyncio.create_task(app.state.firm_feed.warm(client))
            if settings.firm_feed_warm
            else None
        )
        try:
            yield
        finally:
            if warming is not None:
                warming.cancel()
            await models.stop()
            await bus.aclose()
            await client.aclose()

    app = FastAPI(
        title="finmatch matching (internal)",
        version="0.1.0",
        description="Eligibility, learned ranking, reasons and near misses; model lifecycle.",
        lifespan=lifespan,
        # No /docs or /redoc, and /openapi.json only with the internal token (see below).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.catalogues = CatalogueCache()
    app.state.firm_feed = FirmFeed(settings.firm_feed_overlap_seconds)
    if manager is not None:
        app.state.models = manager
    install_error_handlers(app)
    app.add_middleware(AccessLogMiddleware)
    guard = [Depends(require_internal_token)]
    app.include_router(rank.router, dependencies=guard)
    app.include_router(models.router, dependencies=guard)
    app.include_router(policy.router, dependencies=guard)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        return rank.document_body(generate_openapi())  # cached by FastAPI; adding is idempotent

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"])
    async def readyz() -> JSONResponse:
        """Ready whenever it can rank (the prior always can); says which model and any trouble."""
        manager: ModelManager = app.state.models
        body = {
            "status": "ok",
            "model_version": manager.scorer.version,
            "is_prior": manager.scorer.is_prior,
            "model_error": manager.last_error,
        }
        return JSONResponse(body)

    serve_internal_openapi(app)
    # Open like the probes: the scraper has no token; the NetworkPolicies decide who reaches it.
    mount_metrics(app, "matching", MatchingCollector(app))
    return app
