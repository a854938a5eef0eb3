"""The registry calls the gateway makes itself; public resource routes go through api/proxy.py."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Unpack

import httpx
import orjson

from services.gateway.clients._client import JSON, ClientOptions, DownstreamClient, Params, query
from services.gateway.clients._transport import as_timeout
from shared.internal import IDEMPOTENCY_FINGERPRINT_HEADER, IDEMPOTENCY_KEY_HEADER

# The Idempotency-Key (and request fingerprint) of the public POST being served, if it has one.
_forwarded_key: ContextVar[tuple[str, str] | None] = ContextVar(
    "finmatch_forwarded_idempotency_key", default=None
)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@contextlib.contextmanager
def forwarding_idempotency_key(key: str, fingerprint: str) -> Iterator[None]:
    """Within this block, each write made for a principal carries the public request's key, so
    the registry enforces it in its database (see services/registry/idempotency.py)."""
    token = _forwarded_key.set((key, fingerprint))
    try:
        yield
    finally:
        _forwarded_key.reset(token)


class RegistryClient(DownstreamClient):
    """Resource routes act for a principal (``X-Principal-Id``); internal routes for the gateway.

    Writes that are safe to repeat are marked idempotent so that they are retried: key
    resolution (a read sent as POST) and the bootstrap admin. Other POSTs go out once.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: httpx.Timeout | float = 10.0,
        bulk_timeout: float = 300.0,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__("registry", base_url, token, timeout=timeout, **options)
        # An import answers only after its last batch is written.
        self.bulk_timeout = as_timeout(bulk_timeout)

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
        keyed = _forwarded_key.get()
        if keyed is not None and principal_id is not None and method.upper() not in _READ_METHODS:
            key, fingerprint = keyed
            headers = {
                **(headers or {}),
                IDEMPOTENCY_KEY_HEADER: key,
                IDEMPOTENCY_FINGERPRINT_HEADER: fingerprint,
            }
        return await super().request(
            method,
            path,
            principal_id=principal_id,
            idempotent=idempotent,
            headers=headers,
            **kwargs,
        )

    # Firms

    async def get_firm(self, principal_id: int, firm_id: int) -> tuple[JSON, str | None]:
        response = await self.request("GET", f"/v1/firms/{firm_id}", principal_id=principal_id)
        return self.json_object(response), response.headers.get("ETag")

    async def bulk_import(
        self,
        principal_id: int,
        params: Params,
        body_stream: AsyncIterable[bytes],
        path: str = "/v1/firms/bulk",
        *,
        method: str = "POST",
        content_type: str = "application/x-ndjson",
    ) -> httpx.Response:
        """The registry's NDJSON answer as it came (one result per line, then a summary), of
        the firms' bulk import or another streamed import (``path``: past decisions, a
        register upload, whose body may be CSV)."""
        return await self.stream(
            method,
            path,
            content=body_stream,
            principal_id=principal_id,
            params=query(params),
            headers={"Content-Type": content_type},
            timeout=self.bulk_timeout,
        )

    # The gateway's own needs: the catalogue, who a key is, what was shown

    async def catalogue(self) -> JSON:
        """``{"version": str, "products": [...]}``: every active product, as matching ranks it."""
        response = await self.request("GET", "/internal/catalogue")
        return self.json_object(response)

    async def resolve_key(self, key_hash: str) -> JSON:
        """The principal owning the key with this SHA-256 digest; a 401 PassThrough if none."""
        response = await self.request(
            "POST", "/internal/auth/resolve", json={"key_hash": key_hash}, idempotent=True
        )
        return self.json_object(response)

    async def bootstrap_admin(self) -> JSON:
        """The principal the bootstrap admin key acts as (created on first use)."""
        response = await self.request(
            "POST", "/internal/principals/bootstrap-admin", idempotent=True
        )
        return self.json_object(response)

    async def record_match_events(self, events: list[JSON]) -> JSON:
        """Append what a firm was shown; sent once, since a repeat would count it twice."""
        response = await self.request(
            "POST",
            "/internal/match-events",
            content=orjson.dumps({"events": events}),  # batches of up to 1,000 events
            headers={"Content-Type": "application/json"},
        )
        return self.json_object(response)

    # Health

    async def ready(self) -> bool:
        return await self.probe("/readyz")
