"""One optimistic-concurrency rule for every PATCH, firms and products alike (issue 11, item 8):
If-Match is required (428 naming it), a stale one is 412, ``*`` is the explicit last-write-wins,
and every GET, POST and PATCH of one record carries its ETag."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.conftest import Api, Stack
from tests.registry import data

KINDS = ["firm", "product"]


def _record(stack: Stack, kind: str) -> tuple[Api, str, dict[str, Any], Any]:
    """(owner, url, a change, the POST answer) of a new firm or product."""
    if kind == "firm":
        owner = stack.principal("portal")
        created = owner.post("/v1/firms", json=data.firm())
        change: dict[str, Any] = {"employees": 9}
    else:
        owner = stack.institution("东莞测试银行")
        created = owner.post("/v1/products", json=data.product())
        change = {"rate_max_bp": 500}
    assert created.status_code == 201, created.text
    return owner, f"/v1/{kind}s/{created.json()['id']}", change, created


@pytest.mark.parametrize("kind", KINDS)
def test_every_answer_with_one_record_carries_its_etag(stack: Stack, kind: str) -> None:
    owner, url, change, created = _record(stack, kind)
    assert created.headers["ETag"] == '"1"'
    read = owner.get(url)
    assert read.headers["ETag"] == '"1"'
    patched = owner.patch(url, json=change, headers={"If-Match": read.headers["ETag"]})
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] == f'"{patched.json()["version"]}"' == '"2"'


@pytest.mark.parametrize("kind", KINDS)
def test_a_patch_without_if_match_is_428_naming_the_header(stack: Stack, kind: str) -> None:
    owner, url, change, _created = _record(stack, kind)
    refused = owner.patch(url, json=change)
    assert refused.status_code == 428, refused.text
    assert refused.json()["code"] == "precondition_required"
    assert refused.json()["errors"][0]["field"] == "If-Match"
    assert owner.get(url).json()["version"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_stale_if_match_is_412_and_star_applies_to_the_current_version(
    stack: Stack, kind: str
) -> None:
    owner, url, change, _created = _record(stack, kind)
    assert owner.patch(url, json=change, headers={"If-Match": '"1"'}).status_code == 200
    stale = owner.patch(url, json=change, headers={"If-Match": '"1"'})
    assert stale.status_code == 412, stale.text
    assert stale.json()["code"] == "stale_version"
    star = owner.patch(url, json=change, headers={"If-Match": "*"})
    assert star.status_code == 200, star.text
    assert star.headers["ETag"] == '"3"'


@pytest.mark.parametrize("kind", KINDS)
def test_someone_elses_record_is_404_before_any_precondition(stack: Stack, kind: str) -> None:
    _owner, url, change, _created = _record(stack, kind)
    stranger = stack.principal("portal") if kind == "firm" else stack.institution("别的银行")
    assert stranger.patch(url, json=change).status_code == 404


def test_both_patches_document_the_same_rule(stack: Stack) -> None:
    paths = stack.client.get("/openapi.json").json()["paths"]
    documented = []
    for path in ("/v1/firms/{firm_id}", "/v1/products/{product_id}"):
        patch = paths[path]["patch"]
        [if_match] = [p for p in patch["parameters"] if p["name"].lower() == "if-match"]
        assert {"412", "428"} <= set(patch["responses"]), path
        assert "ETag" in patch["responses"]["200"]["headers"], path
        assert "ETag" in paths[path]["get"]["responses"]["200"]["headers"], path
        documented.append(if_match["description"])
    assert documented[0] == documented[1]
    assert "Required" in documented[0]
    assert "*" in documented[0]
    assert "ETag" in paths["/v1/firms"]["post"]["responses"]["201"]["headers"]
    assert "ETag" in paths["/v1/products"]["post"]["responses"]["201"]["headers"]
