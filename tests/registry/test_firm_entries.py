"""Firm entries in Redis written through by the registry around every firm write (real Redis):
the newest always wins, an erased firm never comes back, and a write Redis missed is written
as soon as it answers again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.registry.config import RegistrySettings
from services.registry.firm_cache import FirmCache
from services.registry.main import create_app
from services.registry.models import Principal
from shared.firm_entries import (
    WRITE_SCRIPT,
    WRITER_KEY,
    EntryWrite,
    entry_key,
    read_entry,
    script_arguments,
)
from tests.registry import data
from tests.registry.conftest import TOKEN, Actor
from tests.registry.test_bulk import ndjson
from tests.services import need_redis

pytestmark = pytest.mark.redis
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"finmatch-test:{uuid.uuid4().hex[:12]}:"
    yield value
    raw = redis.Redis.from_url(need_redis())
    keys = list(raw.scan_iter(match=f"{value}*"))
    if keys:
        raw.delete(*keys)
    raw.close()


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(need_redis())
    yield client
    client.close()


def _portal(client: TestClient, engine: Engine) -> Actor:
    with Session(engine) as session:
        principal = Principal(role="portal", name="portal with entries")
        session.add(principal)
        session.commit()
        return Actor(client, principal.id)


@pytest.fixture
def portal(engine: Engine, prefix: str) -> Iterator[Actor]:
    settings = RegistrySettings(
        internal_token=TOKEN,
        database_url="unused://",
        redis_url=need_redis(),
        redis_prefix=prefix,
        firm_entry_retry_seconds=0.05,
    )
    with TestClient(create_app(settings, engine)) as client:
        yield _portal(client, engine)


def _entry(raw: redis.Redis, prefix: str, firm_id: int) -> bytes | None:
    value = raw.get(prefix + entry_key(firm_id))
    assert value is None or isinstance(value, bytes)
    return value


def test_each_write_leaves_the_firm_as_committed(
    portal: Actor, raw: redis.Redis, prefix: str
) -> None:
    created = portal.post("/v1/firms", json=data.firm(1))
    assert created.status_code == 201, created.text
    firm_id = created.json()["id"]
    entry = read_entry(_entry(raw, prefix, firm_id))
    assert entry is not None
    assert entry.firm == created.json()
    assert entry.etag == created.headers["etag"] == '"1"'

    patched = portal.patch(
        f"/v1/firms/{firm_id}", json={"employees": 7}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    entry = read_entry(_entry(raw, prefix, firm_id))
    assert entry is not None
    assert entry.firm["employees"] == 7
    assert entry.firm == patched.json()
    assert entry.etag == '"2"'

    again = portal.post("/v1/firms", json=data.firm(1, consent_matching=False))  # upsert
    assert again.status_code == 200
    entry = read_entry(_entry(raw, prefix, firm_id))
    assert entry is not None
    assert entry.firm["consent_matching"] is False
    assert entry.etag == '"3"'


def test_an_erased_firm_is_a_tombstone_no_late_write_revives(
    portal: Actor, raw: redis.Redis, prefix: str
) -> None:
    created = portal.post("/v1/firms", json=data.firm(2))
    firm = created.json()
    assert portal.delete(f"/v1/firms/{firm['id']}").status_code == 204
    held = _entry(raw, prefix, firm["id"])
    assert held is not None
    assert held.endswith(b"|D\n")
    assert read_entry(held) is None
    # A gateway that read the firm before the erasure writes it back afterwards: refused.
    late = EntryWrite.of_firm(firm, orjson.dumps(firm))
    keys, argv = script_arguments([late], 60_000)
    written = raw.eval(WRITE_SCRIPT, len(keys), *[prefix + k for k in keys], *argv)
    assert written == 0
    assert read_entry(_entry(raw, prefix, firm["id"])) is None


def test_an_older_version_never_replaces_a_newer_one(
    portal: Actor, raw: redis.Redis, prefix: str
) -> None:
    created = portal.post("/v1/firms", json=data.firm(3))
    first = created.json()
    portal.patch(f"/v1/firms/{first['id']}", json={"employees": 9}, headers={"If-Match": "*"})
    stale = EntryWrite.of_firm(first, orjson.dumps(first))
    keys, argv = script_arguments([stale], 60_000)
    assert raw.eval(WRITE_SCRIPT, len(keys), *[prefix + k for k in keys], *argv) == 0
    entry = read_entry(_entry(raw, prefix, first["id"]))
    assert entry is not None
    assert entry.firm["employees"] == 9
    # A marker of the same version does not replace the entry; the entry replaces a marker.
    marker = EntryWrite(stale.firm_id, stale.registered, 2)
    keys, argv = script_arguments([marker], 60_000)
    assert raw.eval(WRITE_SCRIPT, len(keys), *[prefix + k for k in keys], *argv) == 0


def test_a_bulk_import_marks_each_firm_so_the_registry_is_asked(
    portal: Actor, raw: redis.Redis, prefix: str
) -> None:
    created = portal.post("/v1/firms", json=data.firm(4)).json()
    assert read_entry(_entry(raw, prefix, created["id"])) is not None
    rows = [data.firm(4, employees=11), data.firm(5)]
    answer = portal.post("/v1/firms/bulk", params={"import_id": "x"}, content=ndjson(rows))
    assert answer.status_code == 200, answer.text
    ids = [orjson.loads(line)["id"] for line in answer.content.splitlines()[:-1]]
    assert created["id"] in ids
    for firm_id in ids:
        held = _entry(raw, prefix, firm_id)
        assert held is not None
        assert read_entry(held) is None
    assert _entry(raw, prefix, created["id"]).endswith(b"|2\n")  # type: ignore[union-attr]
    # The firm as the registry now answers it is taken; the one before the import is not.
    now = portal.get(f"/v1/firms/{created['id']}").json()
    for firm, taken in ((created, 0), (now, 1)):
        keys, argv = script_arguments([EntryWrite.of_firm(firm, orjson.dumps(firm))], 60_000)
        assert raw.eval(WRITE_SCRIPT, len(keys), *[prefix + k for k in keys], *argv) == taken
    entry = read_entry(_entry(raw, prefix, created["id"]))
    assert entry is not None
    assert entry.firm["employees"] == 11


def test_the_registry_holds_the_writers_lease_while_redis_takes_its_writes(
    portal: Actor, raw: redis.Redis, prefix: str
) -> None:
    assert raw.get(prefix + WRITER_KEY) == b"1"
    assert 0 < raw.pttl(prefix + WRITER_KEY) <= 3_000


def test_a_write_redis_missed_is_written_when_it_answers_again(
    engine: Engine, raw: redis.Redis, prefix: str
) -> None:
    """The firm write succeeds without Redis; its version is remembered, no lease is renewed,
    and once Redis answers the marker refuses the entry Redis still held from before."""
    cache = FirmCache(need_redis(), prefix=prefix, ttl_seconds=60)
    settings = RegistrySettings(internal_token=TOKEN, database_url="unused://")
    client = TestClient(create_app(settings, engine))
    with client:  # its lifespan sets no cache (no FINMATCH_REDIS_URL): this one instead
        client.app.state.firm_cache = cache  # type: ignore[attr-defined]
        portal = _portal(client, engine)
        created = portal.post("/v1/firms", json=data.firm(6)).json()
        assert read_entry(_entry(raw, prefix, created["id"])) is not None

        good = cache.client
        cache.client = redis.Redis.from_url(CLOSED_PORT_URL, socket_connect_timeout=0.2)
        cache._script = cache.client.register_script(WRITE_SCRIPT)
        patched = portal.patch(
            f"/v1/firms/{created['id']}", json={"employees": 3}, headers={"If-Match": "*"}
        )
        assert patched.status_code == 200, patched.text
        assert cache.pending == 1
        assert not cache.keep_lease(3.0)  # no lease while a write is pending
        # Redis still holds version 1, but only until the registry reaches it again.
        assert read_entry(_entry(raw, prefix, created["id"])) is not None

        cache.client.close()
        cache.client = good
        cache._script = good.register_script(WRITE_SCRIPT)
        raw.delete(prefix + WRITER_KEY)
        assert cache.keep_lease(3.0)
        assert cache.pending == 0
        held = _entry(raw, prefix, created["id"])
        assert held is not None
        assert held.endswith(b"|2\n")
        assert read_entry(held) is None
        assert raw.get(prefix + WRITER_KEY) == b"1"
    cache.close()
