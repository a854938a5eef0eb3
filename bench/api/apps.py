"""The three services' real apps, each with the bench's floor route added after its own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import Path as PathParam
from fastapi import Request, Response

from bench.api.common import (
    FIRM_BODY_VARIABLE,
    FLOOR_BODY_VARIABLE,
    FLOOR_PATH,
    HOPS_PATH,
    MATCHING_FLOOR_PATH,
    REGISTRY_FLOOR_PATH,
)
from bench.api.cprofiling import install_from_env
from services.gateway.auth import CurrentPrincipal

FirmId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


async def floor_answer(firm_id: FirmId, request: Request) -> Response:
    """The floor: the bytes of a real match answer, read once from the captured file."""
    state = request.app.state
    body: bytes | None = getattr(state, "bench_floor_body", None)
    if body is None:
        body = state.bench_floor_body = Path(os.environ[FLOOR_BODY_VARIABLE]).read_bytes()
    return Response(body, media_type="application/json")


def _file_bytes(request: Request, variable: str) -> bytes:
    """The bytes of the file an environment variable names, read once per process."""
    held: dict[str, bytes] = request.app.state.__dict__.setdefault("bench_files", {})
    body = held.get(variable)
    if body is None:
        body = held[variable] = Path(os.environ[variable]).read_bytes()
    return body


def gateway_app() -> Any:
    """The real gateway app (services.gateway.main.create_app) plus the two floor routes.

    They are added after every gateway route, so they run through the same uvicorn process,
    middleware, exception handlers and router. The floor answers the bytes of a real match
    answer that the bench captured into the file named by FINMATCH_BENCH_FLOOR_BODY. The hops
    floor makes the uncached path's calls (key and rate limit, the answer's cache lookup, the
    firm from the registry, the ranking from matching) to routes that answer precomputed bytes.
    """
    from services.gateway.catalogue import GENERATION_KEY
    from services.gateway.main import create_app

    install_from_env()

    async def hops_answer(
        firm_id: FirmId, request: Request, principal: CurrentPrincipal
    ) -> Response:
        state = request.app.state
        await state.cache.get_many(
            f"firms:generation:{principal.id}", GENERATION_KEY, f"bench:hops:{firm_id}"
        )
        firm = await state.registry.request(
            "GET", REGISTRY_FLOOR_PATH.format(firm_id=firm_id), principal_id=principal.id
        )
        ranking = await state.matching.request(
            "POST",
            MATCHING_FLOOR_PATH,
            content=b'{"firm":' + firm.content + b',"catalogue_version":"bench"}',
            headers={"Content-Type": "application/json"},
            idempotent=True,
        )
        return Response(ranking.content, media_type="application/json")

    app = create_app()
    app.add_api_route(FLOOR_PATH, floor_answer, methods=["GET"], include_in_schema=False)
    app.add_api_route(HOPS_PATH, hops_answer, methods=["GET"], include_in_schema=False)
    return app


def _with_floor_route(app: Any, path: str, method: str, endpoint: Any, *guards: Any) -> Any:
    """``app`` with one bench route, behind the service's own guards, after all its routes."""
    from fastapi import Depends

    app.add_api_route(
        path,
        endpoint,
        methods=[method],
        dependencies=[Depends(guard) for guard in guards],
        include_in_schema=False,
    )
    return app


def registry_app() -> Any:
    """The real registry app plus the hops floor's firm: precomputed bytes, no database."""
    from services.registry.api.deps import get_principal, require_internal_token
    from services.registry.main import create_app

    install_from_env()

    async def firm_floor(firm_id: FirmId, request: Request) -> Response:
        return Response(_file_bytes(request, FIRM_BODY_VARIABLE), media_type="application/json")

    return _with_floor_route(
        create_app(), REGISTRY_FLOOR_PATH, "GET", firm_floor, require_internal_token, get_principal
    )


def matching_app() -> Any:
    """The real matching app plus the hops floor's ranking: reads the body, answers the bytes
    of a real match answer, ranks nothing."""
    from services.matching.main import create_app
    from shared.internal import require_internal_token

    install_from_env()

    async def rank_floor(request: Request) -> Response:
        await request.body()
        return Response(_file_bytes(request, FLOOR_BODY_VARIABLE), media_type="application/json")

    return _with_floor_route(
        create_app(), MATCHING_FLOOR_PATH, "POST", rank_floor, require_internal_token
    )
