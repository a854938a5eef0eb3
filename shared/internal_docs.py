"""The OpenAPI document of an internal service, for holders of the internal token only."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from shared.internal import require_internal_token


def serve_internal_openapi(app: FastAPI) -> None:
    """``GET /openapi.json`` answered only with the right ``X-Internal-Token``.

    The app is made with ``docs_url``, ``redoc_url`` and ``openapi_url`` None: Swagger UI and
    ReDoc fetch the document without the header, so behind the token they could not work.
    """

    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    app.add_api_route(
        "/openapi.json",
        openapi,
        methods=["GET"],
        include_in_schema=False,
        dependencies=[Depends(require_internal_token)],
    )
