"""The errors a downstream call can raise, each rendered as problem details.

Hierarchy::

    ProblemError
    ├── DownstreamError (502 bad_gateway)    the answer was garbage or an unexpected 5xx
    │   ├── DownstreamUnavailable (503)      cannot connect, or it answered 503 (its problem
    │   │                                    code kept, e.g. database_unavailable); Retry-After
    │   │   └── CircuitOpen (503)            failing fast while the breaker is open
    │   └── DownstreamTimeout (504)          no answer within the read/write timeout
    └── PassThrough (the downstream's 4xx)   its problem body and status, unchanged
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shared.error_codes import ErrorCode
from shared.errors import ProblemError, ServiceUnavailable

log = logging.getLogger("finmatch.gateway.clients")

_CODES_BY_STATUS = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    412: ErrorCode.PRECONDITION_FAILED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    422: ErrorCode.VALIDATION_ERROR,
    428: ErrorCode.PRECONDITION_REQUIRED,
    429: ErrorCode.TOO_MANY_REQUESTS,
}


def registered_code(code: object, fallback: ErrorCode) -> ErrorCode:
    """A downstream's problem code as ours; one we never declared (a newer downstream, or a
    broken one) is answered as ``fallback`` rather than passed on unregistered."""
    if isinstance(code, str) and code in ErrorCode._value2member_map_:
        return ErrorCode.of(code)
    if code:
        log.warning("downstream problem code %r is not registered; answered as %s", code, fallback)
    return fallback


class DownstreamError(ProblemError):
    status, code, title = 502, ErrorCode.BAD_GATEWAY, "Bad gateway"

    def __init__(
        self, downstream: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail, headers=headers, extra={"downstream": downstream})
        self.downstream = downstream


class DownstreamUnavailable(DownstreamError, ServiceUnavailable):
    status, code, title = 503, ErrorCode.SERVICE_UNAVAILABLE, "Service unavailable"

    def __init__(
        self, downstream: str, detail: str, *, retry_after: int, code: str | None = None
    ) -> None:
        super().__init__(downstream, detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after
        if code is not None:  # the downstream's own reason, passed on to the public client
            self.code = registered_code(code, ErrorCode.SERVICE_UNAVAILABLE)


class CircuitOpen(DownstreamUnavailable):
    pass


class DownstreamTimeout(DownstreamError):
    status, code, title = 504, ErrorCode.GATEWAY_TIMEOUT, "Gateway timeout"


class PassThrough(ProblemError):
    """A downstream's 4xx, re-raised so that the public client sees it unchanged."""

    def __init__(
        self,
        status: int,
        problem: Mapping[str, Any],
        *,
        headers: dict[str, str] | None = None,
        downstream: str = "",
    ) -> None:
        code = registered_code(
            problem.get("code"), _CODES_BY_STATUS.get(status, ErrorCode.HTTP_ERROR)
        )
        detail = str(problem.get("detail") or problem.get("title") or f"{downstream} said {status}")
        super().__init__(detail, code=code, headers=headers)
        self.status = status
        self.title = str(problem.get("title") or self.title)
        self.problem = dict(problem)
        self.downstream = downstream

    @property
    def errors(self) -> list[dict[str, Any]] | None:
        errors = self.problem.get("errors")
        return errors if isinstance(errors, list) else None

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        # The downstream's instance names its own path; ours is the one the client called.
        body = {k: v for k, v in self.problem.items() if k != "instance"}
        body.update(
            type=f"https://finmatch.example/problems/{self.code}",
            title=self.title,
            status=self.status,
            code=self.code,
            detail=self.detail,
        )
        if instance:
            body["instance"] = instance
        return body
