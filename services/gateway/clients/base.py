"""One downstream service over HTTP: timeouts, retries of idempotent calls, a circuit breaker.

Errors a call can raise (all render as problem details)::

    ProblemError
    ├── DownstreamError (502 bad_gateway)    the answer was garbage or an unexpected 5xx
    │   ├── DownstreamUnavailable (503)      cannot connect, or it answered 503; Retry-After
    │   │   └── CircuitOpen (503)            failing fast while the breaker is open
    │   └── DownstreamTimeout (504)          no answer within the read/write timeout
    └── PassThrough (the downstream's 4xx)   its problem body and status, unchanged

Failures that count against the breaker: transport errors and 5xx answers. A 4xx is a
business answer from a healthy service and counts as a success.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from prometheus_client import Counter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from shared.errors import ProblemError, ServiceUnavailable
from shared.request_context import current_request_id, new_request_id

log = logging.getLogger("finmatch.gateway.clients")

BREAKER_TRANSITIONS = Counter(
    "finmatch_circuit_breaker_transitions_total",
    "Circuit-breaker state changes, by downstream service and from/to state "
    "(closed, half_open, open).",
    ["downstream", "from_state", "to_state"],
)

BreakerState = Literal["closed", "open", "half_open"]
Sleep = Callable[[float], Awaitable[None]]
JSON = dict[str, Any]
Params = Mapping[str, Any] | None

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
DEFAULT_RETRY_AFTER_SECONDS = 5
# Below uvicorn's 5 s keep-alive, so we drop an idle connection before the server does.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=50, keepalive_expiry=4)
# Downstream headers the public client needs to see on a passed-through 4xx.
PASSED_HEADERS = ("ETag", "Retry-After", "Allow")
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

    def __init__(self, downstream: str, detail: str, *, retry_after: int) -> None:
        super().__init__(downstream, detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


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


class CircuitBreaker:
    """Consecutive-failure breaker: closed → open → (after a pause) one trial call → closed.

    Our own small class rather than a library: the asyncio-capable ones (circuitbreaker 2.x,
    purgatory 3.x) let every concurrent call through once half-open, read a clock that tests
    cannot inject, and report the state under other names; this one admits exactly one trial.

    Each change of the stored state is counted in BREAKER_TRANSITIONS under ``name`` (the
    downstream client that uses the breaker names it). The open → half-open change is counted
    when the trial call goes out, not when the pause ends.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self.seconds_until_trial() <= 0:
            return "half_open"  # the next call will be the trial
        return self._state

    @property
    def failures(self) -> int:
        return self._failures

    def seconds_until_trial(self) -> float:
        if self._state == "closed":
            return 0.0
        return max(0.0, self._opened_at + self.reset_seconds - self._clock())

    def allow(self) -> bool:
        """Whether a call may go out now; a True in the half-open state takes the one trial."""
        if self._state == "closed":
            return True
        if self._state == "open" and self.seconds_until_trial() <= 0:
            self._move("half_open")
            return True
        return False  # open, or half-open with the trial still in flight

    def record_success(self) -> None:
        self._failures = 0
        if self._state != "closed":
            self._move("closed")

    def record_failure(self) -> None:
        self._failures += 1
        if self._state == "half_open" or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            if self._state != "open":
                self._move("open")

    def release(self) -> None:
        """A call ended without a verdict (cancelled): a trial slot becomes free again."""
        if self._state == "half_open":
            self._move("open")

    def _move(self, state: BreakerState) -> None:
        BREAKER_TRANSITIONS.labels(self.name or "unnamed", self._state, state).inc()
        self._state = state


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter: retry n waits U(0, min(cap, first·2ⁿ⁻¹))."""

    first: float = 0.1
    cap: float = 2.0


class _RetryableAnswer(Exception):
    """A 502/503/504 answer, raised inside the retry loop so that it can be retried."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"answered {response.status_code}")
        self.response = response


def _transient(exc: BaseException) -> bool:
    """Worth another try of an idempotent call: the exchange failed, or a 502/503/504 came."""
    return isinstance(exc, _TRANSIENT)


_TRANSIENT = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    _RetryableAnswer,
)


class PooledTransport(AiohttpTransport):
    """httpx over aiohttp's connection pool (httpx-aiohttp), with aiohttp's connection
    failures named as httpx names them.

    httpcore's own pool checks every idle connection with a system call on every request,
    which cost the gateway ~1.5 ms of CPU per uncached match (bench-api); aiohttp's does not.
    httpx-aiohttp reports a refused connection and a dropped one as ConnectTimeout; here a
    refusal is a ConnectError and a connection closed without an answer a RemoteProtocolError,
    as with httpcore, so logs and problem details say what happened.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ServerTimeoutError):
                raise  # a real timeout
            if isinstance(cause, aiohttp.ClientConnectorError):
                raise httpx.ConnectError(str(exc), request=request) from cause
            if isinstance(cause, aiohttp.ServerDisconnectedError):
                raise httpx.RemoteProtocolError(str(exc), request=request) from cause
            raise


def as_timeout(value: httpx.Timeout | float) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    # Connecting inside our network is fast; a slow connect means the host is gone.
    return httpx.Timeout(value, connect=min(value, 3.0))


class ClientOptions(TypedDict, total=False):
    """The tuning a typed client passes on to its ``DownstreamClient``."""

    retries: int
    breaker: CircuitBreaker | None
    transport: httpx.AsyncBaseTransport | None
    limits: httpx.Limits | None
    backoff: Backoff | None
    sleep: Sleep | None


def query(params: Params) -> dict[str, Any]:
    """Query parameters without the unset ones (None), which httpx would send as empty."""
    return {k: v for k, v in (params or {}).items() if v is not None}


class DownstreamClient:
    """One long-lived ``httpx.AsyncClient`` for one downstream service."""

    def __init__(
        self,
        name: str,
        base_url: str,
        token: str,
        *,
        timeout: httpx.Timeout | float,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.name = name
        self.retries = retries
        self.breaker = breaker or CircuitBreaker()
        if self.breaker.name is None:  # so that its metrics say which downstream it guards
            self.breaker.name = name
        self.backoff = backoff or Backoff()
        self._sleep: Sleep = sleep or asyncio.sleep
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"X-Internal-Token": token},
            timeout=as_timeout(timeout),
            limits=limits or DEFAULT_LIMITS,
            transport=transport or PooledTransport(limits=limits or DEFAULT_LIMITS),
        )

    @property
    def breaker_state(self) -> BreakerState:
        return self.breaker.state

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        principal_id: int | None = None,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """A 2xx answer, or one of this module's errors. ``kwargs`` go to httpx (json, params…)."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        sent = self._headers(principal_id, headers)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1 if idempotent else 1),
            wait=wait_random_exponential(multiplier=self.backoff.first, max=self.backoff.cap),
            retry=retry_if_exception(_transient),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            response: httpx.Response = await retrying(
                self._attempt, method, path, headers=sent, **kwargs
            )
        except (httpx.HTTPError, _RetryableAnswer) as exc:
            raise self._mapped(exc, method, path) from exc
        return self._checked(response)

    async def stream(
        self,
        method: str,
        path: str,
        *,
        content: AsyncIterable[bytes],
        principal_id: int | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a body read from ``content`` and return the whole answer; never retried."""
        sent = self._headers(principal_id, headers)
        method = method.upper()
        try:
            response = await self._attempt(method, path, headers=sent, content=content, **kwargs)
        except (httpx.HTTPError, _RetryableAnswer) as exc:
            raise self._mapped(exc, method, path) from exc
        return self._checked(response)

    async def probe(self, path: str = "/readyz", *, timeout: float = 2.0) -> bool:
        """Whether the service says it is ready; bypasses the breaker and never raises."""
        try:
            response = await self._http.get(
                path, timeout=timeout, headers=self._headers(None, None)
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def json_object(self, response: httpx.Response) -> dict[str, Any]:
        """The answer's JSON object; a 502 when the downstream answered anything else."""
        body = self._json(response)
        if not isinstance(body, dict):
            raise DownstreamError(self.name, f"the {self.name} service answered a non-object")
        return body

    def json_list(self, response: httpx.Response) -> list[Any]:
        body = self._json(response)
        if not isinstance(body, list):
            raise DownstreamError(self.name, f"the {self.name} service answered a non-list")
        return body

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise DownstreamError(
                self.name, f"the {self.name} service answered malformed JSON"
            ) from exc

    def _headers(self, principal_id: int | None, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        headers["X-Request-ID"] = current_request_id() or new_request_id()
        if principal_id is not None:
            headers["X-Principal-Id"] = str(principal_id)
        return headers

    async def _attempt(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if not self.breaker.allow():
            wait = max(1, math.ceil(self.breaker.seconds_until_trial()))
            raise CircuitOpen(
                self.name,
                f"the {self.name} service is failing; calls to it resume in about {wait} s",
                retry_after=wait,
            )
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError:
            self.breaker.record_failure()
            raise
        except BaseException:
            self.breaker.release()  # cancelled, or the body we were sending broke: no verdict
            raise
        if response.status_code >= 500:
            self.breaker.record_failure()
            if response.status_code in RETRYABLE_STATUSES:
                raise _RetryableAnswer(response)
        else:
            self.breaker.record_success()
        return response

    def _checked(self, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if 200 <= status < 300:
            return response
        if status >= 500:
            raise self._error_for_5xx(response)
        if 400 <= status < 500:
            raise self._pass_through(response)
        raise DownstreamError(self.name, f"the {self.name} service answered {status}")

    def _error_for_5xx(self, response: httpx.Response) -> DownstreamError:
        if response.status_code == 503:
            return DownstreamUnavailable(
                self.name,
                f"the {self.name} service is unavailable",
                retry_after=_retry_after(response),
            )
        return DownstreamError(
            self.name, f"the {self.name} service failed ({response.status_code})"
        )

    def _pass_through(self, response: httpx.Response) -> ProblemError:
        try:
            body = response.json()
        except ValueError:
            body = None
        problem: dict[str, Any] = body if isinstance(body, dict) else {}
        if response.status_code == 401 and problem.get("code") == "internal_token_required":
            # Our own misconfiguration: the public client's credentials are not at fault.
            log.error("%s refused the internal token; check FINMATCH_INTERNAL_TOKEN", self.name)
            return DownstreamError(self.name, f"the {self.name} service refused the gateway")
        headers = {h: response.headers[h] for h in PASSED_HEADERS if h in response.headers}
        return PassThrough(response.status_code, problem, headers=headers, downstream=self.name)

    def _mapped(
        self, exc: httpx.HTTPError | _RetryableAnswer, method: str, path: str
    ) -> DownstreamError:
        if isinstance(exc, _RetryableAnswer):
            return self._error_for_5xx(exc.response)
        name = self.name
        kind = type(exc).__name__
        log.warning("%s %s %s failed: %s", name, method, path, kind)
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return DownstreamUnavailable(
                name,
                f"the {name} service cannot be reached ({kind})",
                retry_after=DEFAULT_RETRY_AFTER_SECONDS,
            )
        if isinstance(exc, httpx.TimeoutException):
            return DownstreamTimeout(name, f"the {name} service did not answer in time")
        return DownstreamError(name, f"the {name} service broke the exchange ({kind})")

    def _log_retry(self, state: RetryCallState) -> None:
        outcome = state.outcome
        reason = type(outcome.exception()).__name__ if outcome and outcome.failed else "?"
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s call failed (%s), attempt %d; retrying in %.2f s",
            self.name,
            reason,
            state.attempt_number,
            wait,
        )


def _retry_after(response: httpx.Response) -> int:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else DEFAULT_RETRY_AFTER_SECONDS
