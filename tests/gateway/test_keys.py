"""API keys through the gateway: expiry, last use, the admin's key list, and how long a held
resolution may outlive a change the gateway did not hear of."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.gateway.conftest import Api, Stack, running_stack
from tests.gateway.redis_helpers import FakeClock
from tests.services import need_redis


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
def keyed(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Stack]:
    redis_url = need_redis() if request.param == "redis" else None
    with running_stack(engine, redis_url=redis_url) as stack:
        yield stack


def _holder(stack: Stack) -> int:
    made = stack.admin.post("/v1/admin/principals", json={"role": "portal", "name": "持"})
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def _key(stack: Stack, principal_id: int, **body: Any) -> tuple[Api, dict[str, Any]]:
    made = stack.admin.post("/v1/admin/keys", json={"principal_id": principal_id, **body})
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return Api(stack.client, created["key"]), created


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def _gateway_clock(stack: Stack) -> FakeClock:
    clock = FakeClock(time.time())
    stack.client.app.state.wall_clock = clock  # type: ignore[attr-defined]
    return clock


def _listed(stack: Stack, principal_id: int) -> list[dict[str, Any]]:
    answer = stack.admin.get("/v1/admin/keys", params={"principal_id": principal_id})
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


@pytest.mark.parametrize(
    ("expires_at", "says"),
    [
        ("2020-01-01T00:00:00+00:00", "in the future"),
        (_in(-1), "in the future"),
        ("2030-01-01T00:00:00", "timezone"),  # naive: which zone would it be?
        ("9999-12-31T23:00:00-12:00", "out of range"),
        ("tomorrow", "datetime"),
    ],
    # Fixed ids: _in(-1) is a time of day, and xdist's workers must collect the same names.
    ids=["past", "a-second-ago", "no-offset", "out-of-range", "not-a-time"],
)
def test_expires_at_must_be_a_future_time_with_its_offset(
    stack: Stack, expires_at: str, says: str
) -> None:
    answer = stack.admin.post(
        "/v1/admin/keys", json={"principal_id": _holder(stack), "expires_at": expires_at}
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    [error] = answer.json()["errors"]
    assert error["field"] == "expires_at"
    assert says in error["message"]


def test_a_key_is_refused_as_expired_once_its_time_has_passed(keyed: Stack) -> None:
    """Real time: the key is held in the key cache (30 s) when it expires, 6 s after creation
    (room for a busy machine to make the first request before then)."""
    api, created = _key(keyed, _holder(keyed), expires_at=_in(6))
    assert created["expires_at"] is not None
    assert api.get("/v1/firms").status_code == 200
    deadline = time.monotonic() + 20
    answer = api.get("/v1/firms")
    while answer.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = api.get("/v1/firms")
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "key_expired"
    assert answer.headers["content-type"] == "application/problem+json"
    assert "www-authenticate" in answer.headers
    # Distinguishable from a key that never existed.
    unknown = Api(keyed.client, "fm_port_" + "q" * 43).get("/v1/firms")
    assert (unknown.status_code, unknown.json()["code"]) == (401, "invalid_key")


def test_a_held_key_stops_at_its_expiry_to_the_second(keyed: Stack) -> None:
    clock = _gateway_clock(keyed)
    api, created = _key(keyed, _holder(keyed), expires_at=_in(600))
    expires = datetime.fromisoformat(created["expires_at"]).timestamp()
    assert api.get("/v1/firms").status_code == 200
    clock.now = expires - 10  # past the key cache time too: looked up again, still valid
    assert api.get("/v1/firms").status_code == 200
    clock.now = expires - 0.01
    assert api.get("/v1/firms").status_code == 200
    clock.now = expires  # the registry still thinks it valid (its clock is real): held, refused
    refused = api.get("/v1/firms")
    assert refused.status_code == 401
    assert refused.json()["code"] == "key_expired"


def test_a_key_without_expiry_keeps_working(keyed: Stack) -> None:
    clock = _gateway_clock(keyed)
    api, created = _key(keyed, _holder(keyed))
    assert created["expires_at"] is None
    clock.advance(10 * 365 * 86_400)
    assert api.get("/v1/firms").status_code == 200


def test_a_revocation_the_gateway_missed_holds_within_the_key_cache_time(
    keyed: Stack,
) -> None:
    """Revoked behind the gateway's back (as by another replica without a shared cache): the
    held resolution serves until FINMATCH_KEY_CACHE_SECONDS after the registry gave it, and
    not a moment longer, although every use refreshes KnownKeys."""
    clock = _gateway_clock(keyed)
    api, created = _key(keyed, _holder(keyed))
    assert api.get("/v1/firms").status_code == 200
    with keyed.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE api_key SET revoked_at = :at WHERE id = :id"),
            {"at": datetime.now(UTC), "id": created["id"]},
        )
    for _ in range(29):
        clock.advance(1)
        assert api.get("/v1/firms").status_code == 200
    clock.advance(1)
    refused = api.get("/v1/firms")
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_key"


def test_rotation_the_old_key_works_until_revoked(keyed: Stack) -> None:
    holder = _holder(keyed)
    old, old_created = _key(keyed, holder, label="2026")
    new, _ = _key(keyed, holder, label="2027")
    assert old.get("/v1/firms").status_code == 200
    assert new.get("/v1/firms").status_code == 200
    revoked = keyed.admin.post(f"/v1/admin/keys/{old_created['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked"] is True
    assert revoked.json()["revoked_at"] is not None
    assert old.get("/v1/firms").status_code == 401
    assert new.get("/v1/firms").status_code == 200


def test_the_key_list_shows_last_use_expiry_and_revocation(keyed: Stack) -> None:
    holder = _holder(keyed)
    api, created = _key(keyed, holder, label="门户", expires_at=_in(3600))
    other, _ = _key(keyed, _holder(keyed))
    [listed] = _listed(keyed, holder)
    assert listed["id"] == created["id"]
    assert listed["prefix"] == created["key"][:12]
    assert (listed["label"], listed["revoked"], listed["revoked_at"]) == ("门户", False, None)
    assert listed["last_used_at"] is None
    assert datetime.fromisoformat(listed["expires_at"]) == datetime.fromisoformat(
        created["expires_at"]
    )
    assert "key" not in listed
    assert created["key"] not in str(_listed(keyed, holder))

    before = datetime.now(UTC)
    for _ in range(3):
        assert api.get("/v1/firms").status_code == 200
    [used] = _listed(keyed, holder)
    last_used = datetime.fromisoformat(used["last_used_at"])
    assert before - timedelta(seconds=1) <= last_used <= datetime.now(UTC)
    assert other.get("/v1/firms").status_code == 200
    [again] = _listed(keyed, holder)
    assert again["last_used_at"] == used["last_used_at"]  # not a write per request

    everything = keyed.admin.get("/v1/admin/keys").json()["data"]
    assert {created["id"]} < {key["id"] for key in everything}


def test_the_key_list_pages_and_refuses_bad_filters(stack: Stack) -> None:
    holder = _holder(stack)
    ids = [_key(stack, holder)[1]["id"] for _ in range(3)]
    first = stack.admin.get("/v1/admin/keys", params={"principal_id": holder, "limit": 2})
    assert [key["id"] for key in first.json()["data"]] == ids[:2]
    cursor = first.json()["next_cursor"]
    rest = stack.admin.get(
        "/v1/admin/keys", params={"principal_id": holder, "limit": 2, "cursor": cursor}
    )
    assert [key["id"] for key in rest.json()["data"]] == ids[2:]
    for params, field in (({"principal_id": 0}, "principal_id"), ({"limit": 501}, "limit")):
        refused = stack.admin.get("/v1/admin/keys", params=params)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == field


def test_only_the_admin_lists_keys(stack: Stack) -> None:
    portal = stack.principal("portal")
    official = stack.principal("official")
    for caller in (portal, official, stack.institution("银行")):
        for params in ({}, {"principal_id": portal.principal_id}):  # type: ignore[attr-defined]
            answer = caller.get("/v1/admin/keys", params=params)
            assert answer.status_code == 404
            assert answer.json()["code"] == "not_found"
