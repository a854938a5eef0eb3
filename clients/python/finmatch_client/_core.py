"""The sans-I/O core the sync and async clients share: how a call becomes a request, when
and how long to wait before a retry, and how an answer becomes a model or a typed error.

Neither client decides anything of this itself: each only sends, sleeps and loops.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from finmatch_client._errors import ApiError, UnexpectedResponse, error_class
from finmatch_client.models._base import Body
from finmatch_client.models.imports import ImportLineResult, ImportResult
from finmatch_client.models.problems import ProblemDetails

T = TypeVar("T")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROBLEM_JSON = "application/problem+json"
NDJSON = "application/x-ndjson"
# A retry of a keyed POST while the first is still being processed: the gateway answers 409
# with this code and Retry-After; waiting and sending again gets the first one's answer.
IN_FLIGHT = "idempotency_in_flight"
USER_AGENT = "finmatch-client-python/0.1"


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def etag_of(resource: Any) -> str:
    """The ETag of a firm, product or webhook endpoint as read: its version, quoted."""
    return f'"{resource.version}"'


@dataclass(frozen=True)
class RetryPolicy:
    """When a call is sent again: on 429 and 503, on a keyed POST still in flight (409
    ``idempotency_in_flight``) and on network errors (no answer), at most ``max_retries``
    times. The wait is the answer's Retry-After when it gives one; a Retry-After longer than
    ``retry_after_max`` is not waited for (the error is raised with ``retry_after`` set).
    Otherwise it is exponential with full jitter: uniform in [0, min(backoff_max,
    backoff_base * 2**attempt)], so that many clients refused at once do not come back at
    once."""

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 30.0
    statuses: frozenset[int] = frozenset({429, 503})
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        return self.rng.uniform(0.0, min(self.backoff_max, self.backoff_base * 2.0**attempt))

    def after_answer(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before sending again, or None to take this answer as final."""
        if attempt >= self.max_retries or not _retryable(response, self.statuses):
            return None
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None:
            return self.backoff(attempt)
        return retry_after if retry_after <= self.retry_after_max else None

    def after_error(self, attempt: int) -> float | None:
        """Seconds to wait after a network error, or None when the retries are spent."""
        return None if attempt >= self.max_retries else self.backoff(attempt)


NO_RETRIES = RetryPolicy(max_retries=0)


def _retryable(response: httpx.Response, statuses: frozenset[int]) -> bool:
    if response.status_code in statuses:
        return True
    return response.status_code == 409 and _problem_code(response) == IN_FLIGHT


def _problem_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class Call(Generic[T]):
    """One logical API call: its request, and how its answer is read. An unsafe call gets
    its Idempotency-Key here, once: every retry of the call sends the same key."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] = field(default_factory=dict)
    json_body: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


def make_call(
    method: str,
    path: str,
    parse: Callable[[httpx.Response], T],
    *,
    params: Mapping[str, Any] | None = None,
    body: Body | None = None,
    content: bytes | None = None,
    content_type: str | None = None,
    idempotency_key: str | None = None,
    if_match: str | None = None,
) -> Call[T]:
    headers: dict[str, str] = {}
    if method in UNSAFE_METHODS:
        headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
    if if_match is not None:
        headers["If-Match"] = if_match
    if content_type is not None:
        headers["Content-Type"] = content_type
    # Only the fields the caller set: the API's defaults apply to the rest, and a partial
    # update changes exactly what was given (an explicit None included).
    json_body = None if body is None else body.model_dump(mode="json", exclude_unset=True)
    return Call(
        method=method,
        path=path,
        parse=parse,
        params=_query(params or {}),
        json_body=json_body,
        content=content,
        headers=headers,
    )


def _query(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters that were given, as the API reads them."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, date | datetime):
            value = value.isoformat()
        out[name] = value
    return out


@dataclass(frozen=True)
class Connection:
    """Where and as whom: the base URL, the key and the headers every request carries."""

    base_url: str
    api_key: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def request(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **self.headers,
            **call.headers,
        }
        url = self.base_url.rstrip("/") + call.path
        if call.content is not None:
            return http.build_request(
                call.method, url, params=call.params, content=call.content, headers=headers
            )
        if call.json_body is not None:
            return http.build_request(
                call.method, url, params=call.params, json=call.json_body, headers=headers
            )
        return http.build_request(call.method, url, params=call.params, headers=headers)


def outcome(call: Call[T], response: httpx.Response) -> T:
    """The call's answer as its model, or the problem as a typed error."""
    if response.status_code >= 400:
        raise api_error(response)
    try:
        return call.parse(response)
    except (ValidationError, ValueError) as exc:
        raise UnexpectedResponse(
            f"{call.method} {call.path}: {response.status_code} answer not understood: {exc}",
            response,
        ) from exc


def api_error(response: httpx.Response) -> ApiError | UnexpectedResponse:
    try:
        problem = ProblemDetails.model_validate_json(response.content)
    except ValidationError:
        text = response.text[:200]
        return UnexpectedResponse(
            f"{response.status_code} without problem details: {text}", response
        )
    cls = error_class(response.status_code)
    return cls(
        problem,
        request_id=response.headers.get("x-request-id"),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        response=response,
    )


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(answer: Any) -> TypeAdapter[Any]:
    """One adapter per answer type: building one costs far more than a validation."""
    if answer not in _ADAPTERS:
        _ADAPTERS[answer] = TypeAdapter(answer)
    return _ADAPTERS[answer]


def expect(answer: type[T]) -> Callable[[httpx.Response], T]:
    """Read a JSON answer as ``answer`` (a model, ``Page[Model]``, ``list[Model]``)."""
    adapter = _adapter(answer)

    def parse(response: httpx.Response) -> T:
        result: T = adapter.validate_json(response.content)
        return result

    return parse


def expect_nothing(response: httpx.Response) -> None:
    """A 204 (or any answer whose body does not matter)."""


def expect_import(response: httpx.Response) -> ImportResult:
    """An NDJSON import's answer: one object per line, the summary last."""
    lines: list[ImportLineResult] = []
    summary: dict[str, Any] | None = None
    for raw in response.content.splitlines():
        if not raw.strip():
            continue
        item = json.loads(raw)
        if "summary" in item:
            summary = item
        else:
            lines.append(ImportLineResult.model_validate(item))
    if summary is None:
        raise ValueError("the import's answer has no summary line")
    return ImportResult.model_validate({**summary, "lines": lines})


def ndjson(lines: Any) -> bytes:
    """Models (or dicts, or JSON text) as NDJSON bytes, one per line. The whole body is kept,
    so that a retry can send it again."""
    if isinstance(lines, bytes):
        return lines
    if isinstance(lines, str):
        return lines.encode()
    out: list[bytes] = []
    for line in lines:
        if isinstance(line, BaseModel):
            out.append(line.model_dump_json(exclude_unset=True).encode())
        elif isinstance(line, bytes):
            out.append(line.rstrip(b"\n"))
        elif isinstance(line, str):
            out.append(line.rstrip("\n").encode())
        else:
            out.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode())
    return b"".join(chunk + b"\n" for chunk in out)


class Versioned(Protocol):
    """A resource read from the API whose version is its ETag."""

    @property
    def id(self) -> int: ...

    @property
    def version(self) -> int: ...


def target(resource: int | Versioned, if_match: str | None) -> tuple[int, str | None]:
    """The id to update and the If-Match to send: the caller's, else the read version's."""
    if isinstance(resource, int):
        return resource, if_match
    return resource.id, if_match if if_match is not None else etag_of(resource)
