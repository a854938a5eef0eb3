# Generated from finmatch_client/_async/_client.py by tools/unasync.py: edit that, not this.
"""FinmatchClient: the API's resource groups over one connection."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TypeVar

import httpx

from finmatch_client._core import Call, Connection, RetryPolicy
from finmatch_client._sync._session import Session
from finmatch_client._sync.admin import Admin
from finmatch_client._sync.applications import Applications, Decisions
from finmatch_client._sync.firms import Consents, Firms
from finmatch_client._sync.products import Products
from finmatch_client._sync.reference import Reference
from finmatch_client._sync.stats import Stats
from finmatch_client._sync.webhooks import Webhooks

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0


class FinmatchClient:
    """finmatch's public API as one principal (the key's): ``firms``, ``consents``,
    ``products``, ``applications``, ``decisions``, ``webhooks``, ``stats``, ``reference``
    and ``admin``.

    Every unsafe call carries an Idempotency-Key, generated per call (pass
    ``idempotency_key=`` to choose it) and the same on each retry; 429, 503 and network
    errors are retried as ``retry`` says. Pass ``http_client`` to reuse a pool of your own
    (its base URL and headers are not used: the client sends absolute URLs and its own
    Authorization).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._owns_http = http_client is None
        http = http_client if http_client is not None else httpx.Client(timeout=timeout)
        connection = Connection(base_url=base_url, api_key=api_key, headers=dict(headers or {}))
        self._session = Session(http, connection, retry or RetryPolicy())
        self.firms = Firms(self._session)
        self.consents = Consents(self._session)
        self.products = Products(self._session)
        self.applications = Applications(self._session)
        self.decisions = Decisions(self._session)
        self.webhooks = Webhooks(self._session)
        self.stats = Stats(self._session)
        self.reference = Reference(self._session)
        self.admin = Admin(self._session)

    def send(self, call: Call[T]) -> T:
        """Send a call built with ``finmatch_client.make_call`` (an operation the client has
        no method for yet), with the same retries and errors."""
        return self._session.send(call)

    def close(self) -> None:
        """Close the connection pool, unless it was handed in."""
        if self._owns_http:
            self._session.http.close()

    def __enter__(self) -> FinmatchClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
