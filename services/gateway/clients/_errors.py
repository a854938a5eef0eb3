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

from collections.abc import Mapping
from typing import Any

from shared.errors import ProblemError, ServiceUnavailable

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    422: "validation_error",
    428: "precondition_required",
    429: "too_many_requests",
}


class DownstreamError(ProblemError):
    status, code, title = 502, "bad_gateway", "Bad gateway"

    def __init__(
        self, downstream: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail, headers=headers, extra={"downstream": downstream})
        self.downstream = downstream


class DownstreamUnavailable(DownstreamError, ServiceUnavailable):
    status, code, title = 503, "service_unavailable", "Service unavailable"

    def __init__(
        self, downstream: str, detail: str, *, retry_after: int, code: str | None = None
    ) -> None:
        super().__init__(downstream, detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after
        if code is not None:  # the downstream's own reason, passed on to the public client
            self.code = code


class CircuitOpen(DownstreamUnavailable):
    pass


class DownstreamTimeout(DownstreamError):
    status, code, title = 504, "gateway_timeout", "Gateway timeout"


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
        code = str(problem.get("code") or _CODES_BY_STATUS.get(status, "http_error"))
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
            type=body.get("type") or f"https://finmatch.example/problems/{self.code}",
            title=self.title,
            status=self.status,
            code=self.code,
            detail=self.detail,
        )
        if instance:
            body["instance"] = instance
        return body
