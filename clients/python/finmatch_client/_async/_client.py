"""AsyncFinmatchClient: the API's resource groups over one connection."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TypeVar

import httpx

from finmatch_client._async._session import AsyncSession
from finmatch_client._async.admin import AsyncAdmin
from finmatch_client._async.applications import AsyncApplications, AsyncDecisions
from finmatch_client._async.firms import AsyncConsents, AsyncFirms
from finmatch_client._async.products import AsyncProducts
from finmatch_client._async.reference import AsyncReference
from finmatch_client._async.stats import AsyncStats
from finmatch_client._async.webhooks import AsyncWebhooks
from finmatch_client._core import Call, Connection, RetryPolicy

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0


class AsyncFinmatchClient:
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
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._owns_http = http_client is None
        http = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)
        connection = Connection(base_url=base_url, api_key=api_key, headers=dict(headers or {}))
        self._session = AsyncSession(http, connection, retry or RetryPolicy())
        self.firms = AsyncFirms(self._session)
        self.consents = AsyncConsents(self._session)
        self.products = AsyncProducts(self._session)
        self.applications = AsyncApplications(self._session)
        self.decisions = AsyncDecisions(self._session)
        self.webhooks = AsyncWebhooks(self._session)
        self.stats = AsyncStats(self._session)
        self.reference = AsyncReference(self._session)
        self.admin = AsyncAdmin(self._session)

    async def send(self, call: Call[T]) -> T:
        """Send a call built with ``finmatch_client.make_call`` (an operation the client has
        no method for yet), with the same retries and errors."""
        return await self._session.send(call)

    async def close(self) -> None:
        """Close the connection pool, unless it was handed in."""
        if self._owns_http:
            await self._session.http.aclose()

    async def __aenter__(self) -> AsyncFinmatchClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
