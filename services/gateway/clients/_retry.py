"""Which downstream calls are retried, and how long to wait between the tries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

Sleep = Callable[[float], Awaitable[None]]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter: retry n waits U(0, min(cap, first·2ⁿ⁻¹))."""

    first: float = 0.1
    cap: float = 2.0


class RetryableAnswer(Exception):
    """A 502/503/504 answer, raised inside the retry loop so that it can be retried."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"answered {response.status_code}")
        self.response = response


_TRANSIENT = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    RetryableAnswer,
)


def _transient(exc: BaseException) -> bool:
    """Worth another try of an idempotent call: the exchange failed, or a 502/503/504 came."""
    return isinstance(exc, _TRANSIENT)


def retrying(
    attempts: int,
    backoff: Backoff,
    sleep: Sleep,
    before_sleep: Callable[[RetryCallState], None],
) -> AsyncRetrying:
    """Up to ``attempts`` tries of a call while it fails transiently; the last error is raised."""
    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=backoff.first, max=backoff.cap),
        retry=retry_if_exception(_transient),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
