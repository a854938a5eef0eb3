"""Problem-details errors (RFC 9457) shared by every service, and the handlers that render them.

Hierarchy (all render as ``application/problem+json`` with a machine-readable ``code``)::

    ProblemError                  base: status, code, title, detail, optional field
    ├── NotFound (404)            also used for out-of-scope ids, so ids cannot be probed
    ├── Conflict (409)            duplicate, invalid state transition, in-flight duplicate
    ├── PreconditionFailed (412)  stale If-Match version
    ├── PreconditionRequired (428)
    ├── PayloadTooLarge (413)
    ├── UnsupportedMediaType (415) a body in a format the endpoint does not read
    ├── TooManyRequests (429)     carries Retry-After and RateLimit headers
    ├── Unprocessable (422)       semantically invalid input, names the field
    └── ServiceUnavailable (503)  a dependency is down; carries Retry-After
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.error_codes import ErrorCode

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("finmatch.errors")


class ProblemError(Exception):
    """``code`` is an ``ErrorCode`` (shared/error_codes.py): a class, or a raise, with a code
    that is not registered there fails (at import, or as it is raised), never silently."""

    status: int = 500
    code: ErrorCode = ErrorCode.INTERNAL_ERROR
    title: str = "Internal error"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = ErrorCode.of(cls.code)

    def __init__(
        self,
        detail: str,
        *,
        code: ErrorCode | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = ErrorCode.of(code)
        self.field = field
        self.headers = headers or {}
        self.extra = extra or {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://finmatch.example/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if self.field is not None:
            body["errors"] = [{"field": self.field, "message": self.detail}]
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class Unauthorized(ProblemError):
    status, code, title = 401, ErrorCode.UNAUTHORIZED, "Unauthorized"


class NotFound(ProblemError):
    status, code, title = 404, ErrorCode.NOT_FOUND, "Not found"


class Conflict(ProblemError):
    status, code, title = 409, ErrorCode.CONFLICT, "Conflict"


class PreconditionFailed(ProblemError):
    status, code, title = 412, ErrorCode.PRECONDITION_FAILED, "Precondition failed"


class PayloadTooLarge(ProblemError):
    status, code, title = 413, ErrorCode.PAYLOAD_TOO_LARGE, "Payload too large"


class UnsupportedMediaType(ProblemError):
    status, code, title = 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Unsupported media type"


class Unprocessable(ProblemError):
    status, code, title = 422, ErrorCode.VALIDATION_ERROR, "Invalid input"


class PreconditionRequired(ProblemError):
    status, code, title = 428, ErrorCode.PRECONDITION_REQUIRED, "Precondition required"


class TooManyRequests(ProblemError):
    status, code, title = 429, ErrorCode.RATE_LIMITED, "Too many requests"


class ServiceUnavailable(ProblemError):
    status, code, title = 503, ErrorCode.SERVICE_UNAVAILABLE, "Service unavailable"


def _loc_to_field(loc: Sequence[int | str]) -> str:
    # FastAPI prefixes the location with where the value came from ("body", "query", ...).
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] or parts
    return ".".join(parts)


def validation_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    out = []
    for err in errors:
        field = _loc_to_field(err.get("loc", ()))
        msg = str(err.get("msg", "invalid value"))
        if err.get("type") == "json_invalid":
            # FastAPI locates unparseable JSON at ("body", <character offset>): the field is the
            # body; the offset and the parser's reason belong in the message. pydantic-core's
            # own parser (a body read by hand) says the line and column in the message itself.
            loc = err.get("loc", ())
            if loc and isinstance(loc[-1], int):
                reason = err.get("ctx", {}).get("error", "")
                msg = f"{msg} at character {loc[-1]}: {reason}"
            field = "body"
        out.append({"field": field, "message": msg, "type": str(err.get("type", ""))})
    return out


def invalid_fields(
    model: str, problems: Mapping[str, str], values: Mapping[str, Any] | None = None
) -> ValidationError:
    """A validation error located at each named field, for a rule that spans several fields.

    A ValueError raised in a model validator has no location, so the problem body could only
    name "body"; pydantic keeps the locations of a ValidationError raised inside a validator.
    """
    return ValidationError.from_exception_data(
        model,
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", "{reason}", {"reason": reason}),
                loc=(field,),
                input=(values or {}).get(field),
            )
            for field, reason in problems.items()
        ],
    )


def problem_response(
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _validation_problem(request: Request, raw_errors: Sequence[Any]) -> JSONResponse:
    errors = validation_errors(raw_errors)
    fields = ", ".join(sorted({e["field"] for e in errors})) or "request"
    body = {
        "type": "https://finmatch.example/problems/validation_error",
        "title": "Invalid input",
        "status": 422,
        "code": ErrorCode.VALIDATION_ERROR,
        "detail": f"invalid value for: {fields}",
        "errors": errors,
        "instance": request.url.path,
    }
    return problem_response(422, body)


_HTTP_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path, for a 405's ``Allow`` (RFC 9110).

    Starlette names only the methods of the first route whose path matched, but FastAPI makes
    one route per operation: ``/v1/firms`` answered ``Allow: POST`` though GET is served too.
    Each method is tried against the router (included routers expose no ``methods`` of their
    own), so the answer is what routing would do.
    """
    routes = request.app.router.routes
    return sorted(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    )


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as problem details; never leak a traceback to the client."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.to_problem(request.url.path), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_problem(request, exc.errors())

    @app.exception_handler(ValidationError)
    async def _model_validation(request: Request, exc: ValidationError) -> JSONResponse:
        # Raised when a handler re-validates merged values (a PATCH), not by FastAPI itself.
        return _validation_problem(request, exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, ErrorCode.HTTP_ERROR)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        body = {
            "type": f"https://finmatch.example/problems/{code}",
            "title": str(exc.detail),
            "status": exc.status_code,
            "code": code,
            "detail": str(exc.detail),
            "instance": request.url.path,
        }
        return problem_response(exc.status_code, body, headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {
            "type": "https://finmatch.example/problems/internal_error",
            "title": "Internal error",
            "status": 500,
            "code": ErrorCode.INTERNAL_ERROR,
            "detail": "an unexpected error occurred; it has been logged",
            "instance": request.url.path,
        }
        return problem_response(500, body)


class FieldError(BaseModel):
    field: str
    message: str
    type: str | None = None


class ProblemDetails(BaseModel):
    """The body of every error answer (RFC 9457), as documented in the OpenAPI schema."""

    type: str
    title: str
    status: int
    code: str = Field(description="machine-readable error code")
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: each status answers application/problem+json."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "error"),
            "model": ProblemDetails,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for status in statuses
    }


_DESCRIPTIONS = {
    400: "the body could not be read as its media type (e.g. JSON that is not UTF-8)",
    403: "refused for this credential: a dashboard-session write without its CSRF header",
    401: "missing, unknown or revoked API key",
    404: "not found, or outside the caller's scope",
    409: "conflict: duplicate, invalid state transition or request in flight",
    412: "stale If-Match",
    413: "payload too large",
    422: "invalid input; `errors` names each field",
    428: "If-Match required",
    429: "rate limited; see Retry-After",
    502: "a downstream service answered badly",
    503: "a dependency is unavailable; see Retry-After",
    504: "a downstream service timed out",
}
