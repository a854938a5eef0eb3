"""The firm feed the matching service keeps its firm columns with: every firm a page at a
time, then the firms written and erased since a time; internal only, bad input a 422."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.schemas.firm import FirmFeatures
from shared.schemas.internal import FIRM_FEED_COLUMNS, FirmFeedPage
from tests.registry import data
from tests.registry.conftest import TOKEN, Actor

FEED = "/internal/feeds/firms"
INTERNAL = {"X-Internal-Token": TOKEN}


def page(client: TestClient, **params: Any) -> FirmFeedPage:
    answer = client.get(FEED, params=params, headers=INTERNAL)
    assert answer.status_code == 200, answer.text
    return FirmFeedPage.model_validate_json(answer.content)


def register(portal: Actor, seq: int, **overrides: Any) -> int:
    answer = portal.post("/v1/firms", json=data.firm(seq, **overrides))
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def test_every_firm_a_page_at_a_time_in_id_order(client: TestClient, portal: Actor) -> None:
    ids = [register(portal, seq, consent_matching=seq != 2) for seq in range(1, 6)]
    first = page(client, limit=2)
    assert first.columns["id"] == ids[:2]
    assert first.next_after_id == ids[1]
    assert list(first.columns) == list(FIRM_FEED_COLUMNS)
    assert first.columns["consent_matching"] == [True, False]
    assert "name" not in first.columns
    assert "credit_code" not in first.columns
    # The columns are the firm as matching validates it.
    row = {name: values[0] for name, values in first.columns.items()}
    assert FirmFeatures.model_validate(row).employees == 45
    rest = page(client, limit=2, after_id=first.next_after_id)
    last = page(client, limit=2, after_id=rest.next_after_id)
    assert rest.columns["id"] + last.columns["id"] == ids[2:]
    assert last.next_after_id is None  # a short page is the last
    assert first.erased == []
    assert first.read_at <= datetime.now(UTC)


def test_changes_since_a_time_include_updates_and_erasures(
    client: TestClient, portal: Actor
) -> None:
    kept, changed, erased = (register(portal, seq) for seq in (1, 2, 3))
    before = page(client).read_at
    patched = portal.patch(
        f"/v1/firms/{changed}", json={"employees": 7}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    assert portal.delete(f"/v1/firms/{erased}").status_code == 204
    added = register(portal, 4)
    delta = page(client, changed_since=before.isoformat())
    assert delta.columns["id"] == [changed, added]
    assert delta.columns["employees"] == [7, 45]
    assert delta.erased == [erased]
    assert kept not in delta.columns["id"]
    later = page(client, changed_since=(datetime.now(UTC) + timedelta(seconds=5)).isoformat())
    assert later.columns["id"] == []
    assert later.erased == []
    # Erasures come once, with the first page of a delta.
    assert page(client, changed_since=before.isoformat(), after_id=changed).erased == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after_id": -1}, "after_id"),
        ({"limit": 0}, "limit"),
        ({"limit": 50_001}, "limit"),
        ({"changed_since": "yesterday"}, "changed_since"),
    ],
)
def test_bad_feed_parameters_are_422_naming_them(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    answer = client.get(FEED, params=params, headers=INTERNAL)
    assert answer.status_code == 422
    assert field in answer.text


def test_the_feed_is_internal(client: TestClient) -> None:
    assert client.get(FEED).status_code in (401, 403)
    assert client.get(FEED, headers={"X-Internal-Token": "nope"}).status_code in (401, 403)
