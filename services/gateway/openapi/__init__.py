"""The gateway's OpenAPI schema made exact enough to generate clients from: problem codes per
operation with example bodies, and an example on every request and answer."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.gateway.openapi._examples import add_examples, compose
from services.gateway.openapi._ndjson import NDJSON_BODIES, document_ndjson_bodies
from services.gateway.openapi._problems import OPERATION_CODES, codes_for, document_problems
from shared.error_codes import PUBLIC_CODES

__all__ = ["NDJSON_BODIES", "OPERATION_CODES", "codes_for", "compose", "install_openapi"]


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that documents problems and examples (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            problem = schema["components"]["schemas"]["ProblemDetails"]
            problem["properties"]["code"]["enum"] = [code.value for code in PUBLIC_CODES]
            document_ndjson_bodies(schema)
            document_problems(schema)
            add_examples(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
