# Generated from finmatch_client/_async/_session.py by tools/unasync.py: edit that, not this.
"""Sends a call, retrying as the retry policy says, and reads its answer."""

from __future__ import annotations

import logging
import time
from typing import TypeVar

import httpx

from finmatch_client._core import Call, Connection, RetryPolicy, outcome
from finmatch_client._errors import TransportError

T = TypeVar("T")
log = logging.getLogger("finmatch_client")


class Session:
    """The one loop of the client: send, and on a retryable answer or a network error wait
    and send the same call again (with the same Idempotency-Key)."""

    def __init__(self, http: httpx.Client, connection: Connection, retry: RetryPolicy) -> None:
        self.http = http
        self.connection = connection
        self.retry = retry

    def send(self, call: Call[T]) -> T:
        return outcome(call, self.exchange(call))

    def exchange(self, call: Call[T]) -> httpx.Response:
        attempt = 0
        while True:
            request = self.connection.request(self.http, call)
            try:
                response = self.http.send(request)
            except httpx.TransportError as exc:
                delay = self.retry.after_error(attempt)
                if delay is None:
                    raise TransportError(f"{call.method} {call.path}: {exc!r}") from exc
                log.info(
                    "%s %s: %r; retry %d in %.2f s", call.method, call.path, exc, attempt + 1, delay
                )
            else:
                delay = self.retry.after_answer(attempt, response)
                if delay is None:
                    return response
                log.info(
                    "%s %s: %d; retry %d in %.2f s",
                    call.method,
                    call.path,
                    response.status_code,
                    attempt + 1,
                    delay,
                )
            attempt += 1
            time.sleep(delay)
