"""What the client raises. The whole tree::

FinmatchError                    base of everything below
├── ApiError                     the API answered a problem (RFC 9457): status, code,
│   │                            title, detail, field, errors, request_id, retry_after
│   ├── BadRequest (400)         the body could not be read as its media type
│   ├── Unauthorized (401)       missing, unknown, revoked or expired key
│   ├── Forbidden (403)
│   ├── NotFound (404)           also anything outside your scope
│   ├── Conflict (409)           duplicate, invalid state transition, request in flight
│   ├── PreconditionFailed (412) stale If-Match: read again, merge, resend
│   ├── PayloadTooLarge (413)
│   ├── ValidationFailed (422)   invalid input; ``field`` names the first, ``errors`` all
│   ├── PreconditionRequired (428) an update without If-Match
│   ├── RateLimited (429)        retries ran out; ``retry_after`` says when to come back
│   └── ServerError (5xx)
│       └── ServiceUnavailable (503) retries ran out
├── TransportError               no answer (connection refused, reset, timed out) after
│                                every retry
├── UnexpectedResponse           an answer that is neither what was asked nor a problem
└── WebhookVerificationError     a webhook that is not provably ours, or too old or new
"""

from __future__ import annotations

from typing import Any

import httpx

from finmatch_client.models.problems import FieldError, ProblemDetails


class FinmatchError(Exception):
    """Base of every error this client raises."""


class ApiError(FinmatchError):
    """A problem-details answer. ``request_id`` (the X-Request-Id header) finds the request in
    the services' logs."""

    status: int = 0

    def __init__(
        self,
        problem: ProblemDetails,
        *,
        request_id: str | None,
        retry_after: float | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        self.problem = problem
        self.status = problem.status
        self.code = problem.code
        self.title = problem.title
        self.detail = problem.detail
        self.errors: list[FieldError] = list(problem.errors or [])
        self.field = self.errors[0].field if self.errors else None
        self.request_id = request_id
        self.retry_after = retry_after
        self.response = response
        where = f" [{self.field}]" if self.field else ""
        rid = f" (request {request_id})" if request_id else ""
        super().__init__(f"{self.status} {self.code}{where}: {self.detail}{rid}")

    @property
    def extra(self) -> dict[str, Any]:
        """Members of the problem beyond RFC 9457's (e.g. ``job_id`` of a 409)."""
        return dict(self.problem.model_extra or {})


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PreconditionFailed(ApiError):
    status = 412


class PayloadTooLarge(ApiError):
    status = 413


class ValidationFailed(ApiError):
    status = 422


Unprocessable = ValidationFailed


class PreconditionRequired(ApiError):
    status = 428


class RateLimited(ApiError):
    status = 429


class ServerError(ApiError):
    status = 500


class ServiceUnavailable(ServerError):
    status = 503


class TransportError(FinmatchError):
    """No answer after every retry; ``__cause__`` is httpx's error."""


class UnexpectedResponse(FinmatchError):
    """An answer that is neither the expected one nor a problem (e.g. a proxy's HTML page)."""

    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response
        self.status = response.status_code
        self.request_id = response.headers.get("x-request-id")


class WebhookVerificationError(FinmatchError):
    """``reason``: missing_headers, malformed, stale (older than the tolerance), future,
    bad_signature (no signature matches any of your secrets) or invalid_body."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        ValidationFailed,
        PreconditionRequired,
        RateLimited,
        ServiceUnavailable,
    )
}


def error_class(status: int) -> type[ApiError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else ApiError
