"""The match path reads its firm from the registry's entry in Redis (real Redis): no registry
call, and never a firm older than the registry's last commit, nor another portal's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.gateway.main import create_app as create_gateway
from services.registry.firm_cache import FirmCache
from shared.china_date import today_in_china
from shared.firm_entries import WRITER_KEY, entry_key, entry_stamp, read_entry
from tests.gateway.conftest import (
    BOOTSTRAP,
    Api,
    Stack,
    gateway_settings,
    matching_app,
    registry_app,
)
from tests.gateway.redis_helpers import delete_keys, unique_prefix
from tests.gateway.test_degradation import seed_products_and_firm
from tests.registry import data
from tests.services import need_redis

pytestmark = pytest.mark.redis
_FIRM_READ = re.compile(r"^/v1/firms/\d+$")


class FirmReads(httpx.AsyncBaseTransport):
    """The gateway's route to the registry, counting its reads of one firm."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.reads = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and _FIRM_READ.match(request.url.path):
            self.reads += 1
        return await self.inner.handle_async_request(request)


@contextmanager
def stack_with_entries(
    engine: Engine, *, lease: bool = True
) -> Iterator[tuple[Stack, FirmReads, FirmCache, redis.Redis, str]]:
    """Gateway, registry and matching in-process; the registry writes the firm entries to the
    real Redis the gateway uses, and holds the writer's lease unless ``lease`` is False."""
    url, prefix = need_redis(), unique_prefix()
    registry = registry_app(engine)
    cache = FirmCache(url, prefix=prefix, ttl_seconds=60)
    registry.state.firm_cache = cache
    to_registry = httpx.ASGITransport(app=registry)
    reads = FirmReads(to_registry)
    matching, _manager = matching_app(to_registry)
    gateway = create_gateway(
        gateway_settings(redis_url=url, redis_prefix=prefix),
        registry_transport=reads,
        matching_transport=httpx.ASGITransport(app=matching),
    )
    raw = redis.Redis.from_url(url)
    try:
        if lease:
            assert cache.keep_lease(60)
        with TestClient(gateway) as client:
            yield Stack(client, Api(client, BOOTSTRAP), engine), reads, cache, raw, prefix
    finally:
        cache.close()
        raw.close()
        delete_keys(url, prefix)


def test_an_uncached_match_reads_the_firm_from_its_entry_fresh_after_each_write(
    engine: Engine,
) -> None:
    with stack_with_entries(engine) as (stack, reads, _cache, raw, prefix):
        portal, firm_id, ranked = seed_products_and_firm(stack)
        assert read_entry(raw.get(prefix + entry_key(firm_id))) is not None

        first = portal.get(f"/v1/firms/{firm_id}/matches")
        assert first.status_code == 200, first.text
        assert [r["product_id"] for r in first.json()["ranked"]] == ranked
        assert reads.reads == 0  # the firm came from its entry

        # A change is seen by the very next match: the registry wrote it before answering.
        patched = portal.patch(
            f"/v1/firms/{firm_id}",
            json={"invention_patents": 0, "utility_patents": 0, "employees": 3},
            headers={"If-Match": "*"},
        )
        assert patched.status_code == 200, patched.text
        changed = portal.get(f"/v1/firms/{firm_id}/matches", params={"lang": "en"})
        assert changed.status_code == 200
        assert read_entry(raw.get(prefix + entry_key(firm_id))).firm["employees"] == 3  # type: ignore[union-attr]
        withdrawn = portal.patch(
            f"/v1/firms/{firm_id}", json={"consent_matching": False}, headers={"If-Match": "*"}
        )
        assert withdrawn.status_code == 200
        refused = portal.get(f"/v1/firms/{firm_id}/matches", params={"limit": 5})
        assert refused.status_code == 409
        assert refused.json()["code"] == "matching_not_consented"
        assert reads.reads == 0

        # Erased: a tombstone, read as a miss; the registry answers 404.
        assert portal.delete(f"/v1/firms/{firm_id}").status_code == 204
        gone = portal.get(f"/v1/firms/{firm_id}/matches", params={"limit": 6})
        assert gone.status_code == 404
        assert reads.reads == 1


def test_another_portals_firm_is_404_though_its_entry_is_held(engine: Engine) -> None:
    with stack_with_entries(engine) as (stack, reads, _cache, raw, prefix):
        _portal, firm_id, _ranked = seed_products_and_firm(stack)
        assert read_entry(raw.get(prefix + entry_key(firm_id))) is not None
        other = stack.principal("portal")
        answer = other.get(f"/v1/firms/{firm_id}/matches")
        assert answer.status_code == 404
        assert reads.reads == 0


def test_a_firm_without_an_entry_is_read_from_the_registry_and_written_back(
    engine: Engine,
) -> None:
    with stack_with_entries(engine) as (stack, reads, _cache, raw, prefix):
        portal, firm_id, ranked = seed_products_and_firm(stack)
        raw.delete(prefix + entry_key(firm_id))  # expired, evicted, or never written
        answer = portal.get(f"/v1/firms/{firm_id}/matches")
        assert [r["product_id"] for r in answer.json()["ranked"]] == ranked
        assert reads.reads == 1
        entry = read_entry(raw.get(prefix + entry_key(firm_id)))
        assert entry is not None
        assert entry.firm["id"] == firm_id
        portal.get(f"/v1/firms/{firm_id}/matches", params={"lang": "en"})
        assert reads.reads == 1


def test_without_the_writers_lease_entries_are_neither_read_nor_written(
    engine: Engine,
) -> None:
    """No registry holds the lease (none keeps the entries, or one missed writes): an entry
    in Redis may be stale, so the registry is asked every time."""
    with stack_with_entries(engine, lease=False) as (stack, reads, _cache, raw, prefix):
        portal, firm_id, _ranked = seed_products_and_firm(stack)
        assert raw.get(prefix + WRITER_KEY) is None
        portal.get(f"/v1/firms/{firm_id}/matches")
        portal.get(f"/v1/firms/{firm_id}/matches", params={"lang": "en"})
        assert reads.reads == 2
        raw.delete(prefix + entry_key(firm_id))
        portal.get(f"/v1/firms/{firm_id}/matches", params={"limit": 3})
        assert raw.get(prefix + entry_key(firm_id)) is None


def test_bad_input_on_the_match_path_still_names_the_field(engine: Engine) -> None:
    with stack_with_entries(engine) as (stack, _reads, _cache, _raw, _prefix):
        portal = stack.principal("portal")
        firm_id = portal.post("/v1/firms", json=data.firm()).json()["id"]
        answer = portal.get(f"/v1/firms/{firm_id}/matches", params={"limit": 0})
        assert answer.status_code == 422
        assert "limit" in answer.text


def test_a_register_upload_makes_the_entries_read_before_it_a_miss(engine: Engine) -> None:
    """An upload changes a firm's provenance without a write to the firm: its entry, stamped
    with the registers' generation it was read under, no longer counts."""
    with stack_with_entries(engine) as (stack, reads, _cache, raw, prefix):
        portal, city = stack.principal("portal"), stack.principal("official")
        bank = stack.institution("东莞科技银行")
        product = bank.post(
            "/v1/products", json=data.product(name="高企贷", requires_high_tech=True)
        )
        assert product.status_code == 201, product.text
        firm = portal.post("/v1/firms", json=data.firm(1, is_high_tech=True)).json()
        held = raw.get(prefix + entry_key(firm["id"]))
        today = today_in_china()
        assert read_entry(held, entry_stamp(None, today)) is not None
        assert read_entry(held, entry_stamp(None, today - timedelta(days=1))) is None
        first = portal.get(f"/v1/firms/{firm['id']}/matches").json()
        assert [r["product_id"] for r in first["ranked"]] == [product.json()["id"]]
        assert reads.reads == 0

        # The register lists another firm: this one's declaration is contradicted.
        upload = city.request(
            "PUT",
            "/v1/registers/high_tech",
            params={"upload_id": "entries-1"},
            content=orjson.dumps(data.register_line("high_tech", 2)) + b"\n",
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert upload.status_code == 200, upload.text
        after = portal.get(f"/v1/firms/{firm['id']}/matches").json()
        assert after["ranked"] == []
        assert reads.reads == 1  # the entry was a miss: the registry answered
        again = portal.get(f"/v1/firms/{firm['id']}/matches", params={"lang": "en"}).json()
        assert again["ranked"] == []
        assert reads.reads == 1  # the entry written back, under the new stamp, counts
