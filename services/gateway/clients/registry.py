"""The registry's API as typed calls: firms, products, applications, access, statistics."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Unpack

import httpx
import orjson

from services.gateway.clients._client import JSON, ClientOptions, DownstreamClient, Params, query
from services.gateway.clients._transport import as_timeout


class RegistryClient(DownstreamClient):
    """Resource routes act for a principal (``X-Principal-Id``); internal routes for the gateway.

    Writes that are safe to repeat are marked idempotent so that they are retried: the firm
    upsert (keyed by credit code), key resolution (a read sent as POST), the bootstrap admin
    and revoking a key. Other POSTs and PATCHes go out once.
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

    # Firms

    async def upsert_firm(self, principal_id: int, body: JSON) -> tuple[int, JSON, str | None]:
        """(201 created or 200 updated, the firm, its ETag)."""
        response = await self.request(
            "POST", "/v1/firms", principal_id=principal_id, json=body, idempotent=True
        )
        return response.status_code, self.json_object(response), response.headers.get("ETag")

    async def list_firms(self, principal_id: int, params: Params = None) -> JSON:
        response = await self.request(
            "GET", "/v1/firms", principal_id=principal_id, params=query(params)
        )
        return self.json_object(response)

    async def get_firm(self, principal_id: int, firm_id: int) -> tuple[JSON, str | None]:
        response = await self.request("GET", f"/v1/firms/{firm_id}", principal_id=principal_id)
        return self.json_object(response), response.headers.get("ETag")

    async def update_firm(
        self, principal_id: int, firm_id: int, body: JSON, if_match: str | None
    ) -> tuple[JSON, str | None]:
        response = await self.request(
            "PATCH",
            f"/v1/firms/{firm_id}",
            principal_id=principal_id,
            json=body,
            headers=_if_match(if_match),
        )
        return self.json_object(response), response.headers.get("ETag")

    async def erase_firm(self, principal_id: int, firm_id: int) -> None:
        await self.request("DELETE", f"/v1/firms/{firm_id}", principal_id=principal_id)

    async def bulk_import(
        self, principal_id: int, params: Params, body_stream: AsyncIterable[bytes]
    ) -> httpx.Response:
        """The registry's NDJSON answer as it came (one result per line, then a summary)."""
        return await self.stream(
            "POST",
            "/v1/firms/bulk",
            content=body_stream,
            principal_id=principal_id,
            params=query(params),
            headers={"Content-Type": "application/x-ndjson"},
            timeout=self.bulk_timeout,
        )

    # Products

    async def create_product(self, principal_id: int, body: JSON) -> tuple[JSON, str | None]:
        response = await self.request("POST", "/v1/products", principal_id=principal_id, json=body)
        return self.json_object(response), response.headers.get("ETag")

    async def list_products(self, principal_id: int, params: Params = None) -> JSON:
        response = await self.request(
            "GET", "/v1/products", principal_id=principal_id, params=query(params)
        )
        return self.json_object(response)

    async def get_product(self, principal_id: int, product_id: int) -> tuple[JSON, str | None]:
        response = await self.request(
            "GET", f"/v1/products/{product_id}", principal_id=principal_id
        )
        return self.json_object(response), response.headers.get("ETag")

    async def update_product(
        self, principal_id: int, product_id: int, body: JSON, if_match: str | None
    ) -> tuple[JSON, str | None]:
        response = await self.request(
            "PATCH",
            f"/v1/products/{product_id}",
            principal_id=principal_id,
            json=body,
            headers=_if_match(if_match),
        )
        return self.json_object(response), response.headers.get("ETag")

    async def delete_product(self, principal_id: int, product_id: int) -> None:
        await self.request("DELETE", f"/v1/products/{product_id}", principal_id=principal_id)

    async def catalogue(self) -> JSON:
        """``{"version": str, "products": [...]}``: every active product, as matching ranks it."""
        response = await self.request("GET", "/internal/catalogue")
        return self.json_object(response)

    # Applications

    async def apply(self, principal_id: int, body: JSON) -> JSON:
        response = await self.request(
            "POST", "/v1/applications", principal_id=principal_id, json=body
        )
        return self.json_object(response)

    async def list_applications(self, principal_id: int, params: Params = None) -> JSON:
        response = await self.request(
            "GET", "/v1/applications", principal_id=principal_id, params=query(params)
        )
        return self.json_object(response)

    async def get_application(self, principal_id: int, application_id: int) -> JSON:
        response = await self.request(
            "GET", f"/v1/applications/{application_id}", principal_id=principal_id
        )
        return self.json_object(response)

    async def withdraw(self, principal_id: int, application_id: int) -> JSON:
        response = await self.request(
            "POST", f"/v1/applications/{application_id}/withdraw", principal_id=principal_id
        )
        return self.json_object(response)

    async def decide(self, principal_id: int, application_id: int, body: JSON) -> JSON:
        response = await self.request(
            "POST",
            f"/v1/applications/{application_id}/decision",
            principal_id=principal_id,
            json=body,
        )
        return self.json_object(response)

    async def get_decision(self, principal_id: int, application_id: int) -> JSON:
        response = await self.request(
            "GET", f"/v1/applications/{application_id}/decision", principal_id=principal_id
        )
        return self.json_object(response)

    # Access

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

    async def create_institution(self, principal_id: int, body: JSON) -> JSON:
        response = await self.request(
            "POST", "/v1/institutions", principal_id=principal_id, json=body
        )
        return self.json_object(response)

    async def list_institutions(self, principal_id: int, params: Params = None) -> JSON:
        response = await self.request(
            "GET", "/v1/institutions", principal_id=principal_id, params=query(params)
        )
        return self.json_object(response)

    async def get_institution(self, principal_id: int, institution_id: int) -> JSON:
        response = await self.request(
            "GET", f"/v1/institutions/{institution_id}", principal_id=principal_id
        )
        return self.json_object(response)

    async def create_principal(self, principal_id: int, body: JSON) -> JSON:
        response = await self.request(
            "POST", "/v1/principals", principal_id=principal_id, json=body
        )
        return self.json_object(response)

    async def get_principal(self, principal_id: int, target_id: int) -> JSON:
        response = await self.request(
            "GET", f"/v1/principals/{target_id}", principal_id=principal_id
        )
        return self.json_object(response)

    async def create_key(self, principal_id: int, body: JSON) -> JSON:
        """The new key in clear (shown once) with its id, prefix and owner."""
        response = await self.request("POST", "/v1/keys", principal_id=principal_id, json=body)
        return self.json_object(response)

    async def revoke_key(self, principal_id: int, key_id: int) -> JSON:
        response = await self.request(
            "POST", f"/v1/keys/{key_id}/revoke", principal_id=principal_id, idempotent=True
        )
        return self.json_object(response)

    # Statistics and audit

    async def stats_breakdown(self, principal_id: int, params: Params) -> JSON:
        response = await self.request(
            "GET", "/v1/stats/breakdown", principal_id=principal_id, params=query(params)
        )
        return self.json_object(response)

    async def stats_firms(self, principal_id: int, params: Params = None) -> JSON:
        response = await self.request(
            "GET", "/v1/stats/firms", principal_id=principal_id, params=query(params)
        )
        return self.json_object(response)

    async def audit(self, principal_id: int, params: Params = None) -> JSON:
        response = await self.request(
            "GET", "/v1/audit", principal_id=principal_id, params=query(params)
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


def _if_match(value: str | None) -> dict[str, str]:
    # Without If-Match the registry answers 428, which is what the public client should see.
    return {} if value is None else {"If-Match": value}
