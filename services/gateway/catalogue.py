"""The active catalogue, cached per replica and invalidated across replicas by a generation."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from services.gateway.cache import Cache
from services.gateway.clients import RegistryClient

GENERATION_KEY = "catalogue:generation"


@dataclass(frozen=True)
class Catalogue:
    version: str
    products: list[dict[str, Any]]
    by_id: dict[int, dict[str, Any]] = field(default_factory=dict)
    # What a match answer shows of each product, built once per catalogue, not per answer.
    summaries: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Catalogue:
        products = list(body["products"])
        by_id = {int(p["id"]): p for p in products}
        return cls(str(body["version"]), products, by_id, {k: summary(p) for k, p in by_id.items()})

    def summary(self, product_id: int) -> dict[str, Any]:
        """Name, category and institution of a product (empty values if it is not listed)."""
        found = self.summaries.get(product_id)
        return found if found is not None else summary({})


def summary(product: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": product.get("name", ""),
        "category": product.get("category", ""),
        "institution_id": product.get("institution_id", 0),
    }


class CatalogueProvider:
    """Products are held in memory; only a small generation counter lives in the shared cache.

    A product written through any gateway replica bumps the generation, so every replica
    refetches on its next request; otherwise a replica refetches after ``ttl_seconds``.
    """

    def __init__(self, cache: Cache, registry: RegistryClient, ttl_seconds: float) -> None:
        self._cache = cache
        self._registry = registry
        self._ttl = ttl_seconds
        self._held: tuple[bytes, float, Catalogue] | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Catalogue:
        """The active catalogue (reading its generation from the cache)."""
        return await self.at(await self._cache.get(GENERATION_KEY))

    async def at(self, generation: bytes | None) -> Catalogue:
        """The active catalogue, given GENERATION_KEY's value as the caller read it with other
        keys in one round trip (None: the key is absent, i.e. generation 0)."""
        generation = generation or b"0"
        held = self._held
        if held is not None and held[0] == generation and time.monotonic() < held[1]:
            return held[2]
        async with self._lock:  # one fetch, however many requests wait for it
            held = self._held
            if held is not None and held[0] == generation and time.monotonic() < held[1]:
                return held[2]
            catalogue = Catalogue.of(await self._registry.catalogue())
            self._held = (generation, time.monotonic() + self._ttl, catalogue)
            return catalogue

    async def invalidate(self) -> None:
        await self._cache.incr(GENERATION_KEY)
        self._held = None
