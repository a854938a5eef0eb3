"""The matching service's API as typed calls: ranking, and the model lifecycle for admins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack
from urllib.parse import quote

import httpx
import orjson

from services.gateway.clients._client import JSON, ClientOptions, DownstreamClient
from services.gateway.clients._errors import PassThrough

CATALOGUE_UNKNOWN = "catalogue_unknown"


class MatchingClient(DownstreamClient):
    """Ranking is a pure computation, so a rank request is retried like a read."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: httpx.Timeout | float = 5.0,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__("matching", base_url, token, timeout=timeout, **options)

    async def rank(self, body: JSON) -> JSON:
        """POST /internal/rank; an unknown catalogue version is a 409 ``catalogue_unknown``.

        orjson encodes the body: it holds the catalogue when the service lacks it.
        """
        response = await self.request(
            "POST",
            "/internal/rank",
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
            idempotent=True,
        )
        return self.json_object(response)

    async def eligibility(self, body: JSON) -> JSON:
        """POST /internal/eligibility: one firm against one product's rules."""
        response = await self.request(
            "POST",
            "/internal/eligibility",
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
            idempotent=True,
        )
        return self.json_object(response)

    async def rank_with_catalogue(
        self,
        firm: JSON,
        catalogue_version: str,
        products: Sequence[JSON],
        options: JSON | None = None,
        *,
        firm_id: int | None = None,
        verified: Sequence[str] = (),
    ) -> JSON:
        """Rank against a catalogue, sending its products only if the service lacks them.

        The first request names the version alone (the catalogue is the bulk of the body);
        a replica that has not seen it answers ``catalogue_unknown`` and gets the products once.
        ``verified``: the firm's fields an official register gives (shared VerifiedFields).
        """
        body: JSON = {"firm": firm, "catalogue_version": catalogue_version}
        if verified:
            body["verified"] = list(verified)
        if options is not None:
            body["options"] = options
        if firm_id is not None:
            body["firm_id"] = firm_id
        try:
            return await self.rank(body)
        except PassThrough as exc:
            if exc.status != 409 or exc.code != CATALOGUE_UNKNOWN:
                raise
        return await self.rank({**body, "products": list(products)})

    async def current_model(self) -> JSON:
        response = await self.request("GET", "/internal/models/current")
        return self.json_object(response)

    async def train(self, auto_promote: bool, actor: int | None) -> JSON:
        """Queue a training job (matching answers 202 at once and trains in the background)."""
        response = await self.request(
            "POST",
            "/internal/models/train",
            principal_id=actor,
            json={"auto_promote": auto_promote},
        )
        return self.json_object(response)

    async def list_models(self) -> list[JSON]:
        response = await self.request("GET", "/internal/models")
        models: list[Any] = self.json_list(response)
        return [m for m in models if isinstance(m, dict)]

    async def promote(self, version: str, actor: int | None) -> JSON:
        response = await self.request(
            "POST", f"/internal/models/{quote(version, safe='')}/promote", principal_id=actor
        )
        return self.json_object(response)

    async def rollback(self, actor: int | None) -> JSON:
        response = await self.request("POST", "/internal/models/rollback", principal_id=actor)
        return self.json_object(response)

    async def ready(self) -> bool:
        return await self.probe("/readyz")
