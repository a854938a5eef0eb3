"""The gateway's OpenAPI schema made exact enough to generate clients from: problem codes per
operation with example bodies, and an example on every request and answer."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.gateway.api.proxy import IF_MATCH_PATTERN
from services.gateway.openapi._bounds import integer_bounds
from services.gateway.openapi._examples import add_examples, compose
from services.gateway.openapi._ndjson import NDJSON_BODIES, document_ndjson_bodies
from services.gateway.openapi._problems import OPERATION_CODES, codes_for, document_problems
from shared.error_codes import PUBLIC_CODES

__all__ = ["NDJSON_BODIES", "OPERATION_CODES", "codes_for", "compose", "install_openapi"]


def require_if_match(schema: dict[str, Any]) -> None:
    """If-Match as the registry reads it: required (428 without), an ETag or ``*``."""
    for item in schema["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header" and parameter["name"].lower() == "if-match":
                    parameter["required"] = True
                    parameter["schema"] = {
                        "type": "string",
                        "maxLength": 40,
                        "pattern": IF_MATCH_PATTERN,
                        "title": "If-Match",
                        "examples": ['"3"', "*"],
                    }


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
            integer_bounds(schema)
            require_if_match(schema)
            problem = schema["components"]["schemas"]["ProblemDetails"]
            problem["properties"]["code"]["enum"] = [code.value for code in PUBLIC_CODES]
            document_ndjson_bodies(schema)
            document_problems(schema)
            add_examples(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
