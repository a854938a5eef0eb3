"""One downstream service over HTTP: timeouts, retries of idempotent calls, a circuit breaker.

Failures that count against the breaker: transport errors and 5xx answers. A 4xx is a
business answer from a healthy service and counts as a success. So is a 503 that comes as a
problem with a ``code`` (the registry's ``database_unavailable``): the service answered at
once and says a dependency of its own is down; the breaker guards against a downstream that
is dead or slow, and opening it would only delay the first answer after the dependency is
back. Such a 503 is not retried either (it names its own Retry-After) and reaches the public
client with its code. What a call raises is drawn in ``_errors``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterable, Mapping
from typing import Any, TypedDict

import httpx
import orjson
from tenacity import RetryCallState

from services.gateway.clients._breaker import BreakerState, CircuitBreaker
from services.gateway.clients._errors import (
    CircuitOpen,
    DownstreamError,
    DownstreamTimeout,
    DownstreamUnavailable,
    PassThrough,
)
from services.gateway.clients._retry import (
    IDEMPOTENT_METHODS,
    RETRYABLE_STATUSES,
    Backoff,
    RetryableAnswer,
    Sleep,
    retrying,
)
from services.gateway.clients._transport import DEFAULT_LIMITS, as_timeout
from shared.errors import PROBLEM_JSON, ProblemError
from shared.http_transport import PooledTransport
from shared.request_context import current_request_id, new_request_id

log = logging.getLogger("finmatch.gateway.clients")

JSON = dict[str, Any]
Params = Mapping[str, Any] | None

DEFAULT_RETRY_AFTER_SECONDS = 5
# Downstream headers the public client needs to see on a passed-through 4xx.
PASSED_HEADERS = ("ETag", "Retry-After", "Allow")


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
        """A 2xx answer, or one of the ``_errors``; ``kwargs`` go to httpx (json, params…)."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        sent = self._headers(principal_id, headers)
        attempts = self.retries + 1 if idempotent else 1
        try:
            response: httpx.Response = await retrying(
                attempts, self.backoff, self._sleep, self._log_retry
            )(self._attempt, method, path, headers=sent, **kwargs)
        except (httpx.HTTPError, RetryableAnswer) as exc:
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
        except (httpx.HTTPError, RetryableAnswer) as exc:
            raise self._mapped(exc, method, path) from exc
        return self._checked(response)

    async def probe(self, path: str = "/readyz", *, timeout: float = 2.0) -> bool:
        """Whether the service says it is ready; bypasses the breaker and never raises.

        A ready answer while the breaker is open closes it: the service says it is back, so
        callers need not wait out the pause (a failed probe never opens it)."""
        try:
            response = await self._http.get(
                path, timeout=timeout, headers=self._headers(None, None)
            )
        except httpx.HTTPError:
            return False
        ready = response.status_code == 200
        if ready and self.breaker.state == "open":
            self.breaker.record_success()
        return ready

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
        # orjson: a ranking is ~25 KB, which the standard library parses several times slower,
        # on every uncached match. Our services answer UTF-8, the only encoding orjson reads.
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:  # also raised for bytes that are not UTF-8
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
            if _problem_code(response) is not None and response.status_code == 503:
                self.breaker.record_success()  # alive and answering; see the module docstring
                return response
            self.breaker.record_failure()
            if response.status_code in RETRYABLE_STATUSES:
                raise RetryableAnswer(response)
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
            code = _problem_code(response)
            detail = f"the {self.name} service is unavailable"
            if code is not None:
                detail = f"{detail} ({code})"
            return DownstreamUnavailable(
                self.name, detail, retry_after=_retry_after(response), code=code
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
        self, exc: httpx.HTTPError | RetryableAnswer, method: str, path: str
    ) -> DownstreamError:
        if isinstance(exc, RetryableAnswer):
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


def _problem_code(response: httpx.Response) -> str | None:
    """The ``code`` of a problem-details answer, if it is one."""
    if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        return None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) and code else None


def _retry_after(response: httpx.Response) -> int:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else DEFAULT_RETRY_AFTER_SECONDS
