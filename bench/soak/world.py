"""The soak's world: the demo seed, and what the traffic needs to know of it (via the API)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.api.common import BenchFailure

PAGE = 500


@dataclass(frozen=True)
class ProductTerms:
    id: int
    amount_min: int
    amount_max: int
    term_min: int
    term_max: int
    rate_min: int
    rate_max: int


@dataclass(frozen=True)
class OpenApplication:
    id: int
    amount: int
    term: int
    product_id: int


@dataclass
class World:
    keys: dict[str, str]  # the seed's keys: portal, institution, official_city, admin, ...
    institution_id: int  # the institution whose key the seed issued
    products: list[ProductTerms]  # that institution's active products
    firms: dict[int, bool]  # the portal's firms at the start: id → consent to matching
    open_leads: list[OpenApplication] = field(default_factory=list)  # the institution's
    open_pairs: set[tuple[int, int]] = field(default_factory=set)  # (firm, product), the portal's


def seed(db_url: str, n_firms: int, n_applications: int) -> dict[str, str]:
    """Migrate and write the demo world (firms, products, a decided history, a key per role)."""
    from services.registry.db import make_engine
    from services.registry.migrate import upgrade
    from services.registry.seed.loader import seed_demo

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        seeded = seed_demo(engine, n_firms=n_firms, n_applications=n_applications, progress=False)
    finally:
        engine.dispose()
    if not seeded.seeded:
        raise BenchFailure("the bench database was already seeded")
    return seeded.keys


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def answer_of(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise BenchFailure(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json()


def pages(
    client: httpx.Client, path: str, key: str, **params: str | int
) -> Iterator[dict[str, Any]]:
    """Every item of a paged list answer, following next_cursor."""
    cursor: str | None = None
    while True:
        query = params | {"limit": PAGE} | ({"cursor": cursor} if cursor else {})
        page = answer_of(client.get(path, params=query, headers=auth(key)))
        yield from page["data"]
        cursor = page.get("next_cursor")
        if not cursor:
            return


def read_world(gateway_url: str, keys: dict[str, str]) -> World:
    """The institution behind the seed's institution key, its products and open leads, and the
    portal's firms and open applications, all through the gateway."""
    from services.registry.seed.catalogue import institutions

    with httpx.Client(base_url=gateway_url, timeout=60.0) as client:
        # The seed issues its institution key to the first institution of its catalogue.
        listed = answer_of(client.get("/v1/admin/institutions", headers=auth(keys["admin"])))
        rows = listed["data"] if isinstance(listed, dict) else listed
        name = institutions()[0]["name"]
        institution_id = next((int(r["id"]) for r in rows if r["name"] == name), None)
        if institution_id is None:
            raise BenchFailure(f"institution {name!r} not found")
        products = [
            ProductTerms(
                int(p["id"]),
                int(p["amount_min_yuan"]),
                int(p["amount_max_yuan"]),
                int(p["term_min_months"]),
                int(p["term_max_months"]),
                int(p["rate_min_bp"]),
                int(p["rate_max_bp"]),
            )
            for p in pages(client, "/v1/products", keys["portal"], institution_id=institution_id)
        ]
        if not products:
            raise BenchFailure(f"institution {institution_id} lists no active product")
        firms = {
            int(f["id"]): bool(f["consent_matching"])
            for f in pages(client, "/v1/firms", keys["portal"])
        }
        leads = [
            OpenApplication(
                int(a["id"]),
                int(a["requested_amount_yuan"]),
                int(a["requested_term_months"]),
                int(a["product_id"]),
            )
            for a in pages(client, "/v1/applications", keys["institution"], status="submitted")
        ]
        pairs = {
            (int(a["firm_id"]), int(a["product_id"]))
            for a in pages(client, "/v1/applications", keys["portal"], status="submitted")
            if a["firm_id"] is not None
        }
    return World(keys, institution_id, products, firms, leads, pairs)
