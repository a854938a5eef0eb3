"""The admin's list of institutions: a cursor-paginated list like the others, admins only."""

from __future__ import annotations

from typing import Any

from tests.gateway.conftest import Stack

URL = "/v1/admin/institutions"


def _institutions(stack: Stack, count: int) -> list[int]:
    ids = []
    for n in range(count):
        made = stack.admin.post(URL, json={"name": f"分页银行{n}", "kind": "bank"})
        assert made.status_code == 201, made.text
        ids.append(int(made.json()["id"]))
    return ids


def test_the_list_pages_through_every_institution_in_id_order(stack: Stack) -> None:
    ids = _institutions(stack, 5)
    seen: list[int] = []
    pages: list[list[int]] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        answer = stack.admin.get(URL, params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages.append([row["id"] for row in page["data"]])
        seen += pages[-1]
        if page["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert seen == ids
    assert pages == [ids[:2], ids[2:4], ids[4:]]
    first = stack.admin.get(URL).json()  # the default page holds them all
    assert [row["id"] for row in first["data"]] == ids
    assert first["next_cursor"] is None
    assert set(first["data"][0]) >= {"id", "name", "kind"}


def test_a_full_last_page_has_a_cursor_to_an_empty_one(stack: Stack) -> None:
    ids = _institutions(stack, 2)
    page = stack.admin.get(URL, params={"limit": 2}).json()
    assert [row["id"] for row in page["data"]] == ids
    after = stack.admin.get(URL, params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert after == {"data": [], "next_cursor": None}


def test_bad_paging_is_a_422_naming_the_parameter(stack: Stack) -> None:
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ):
        refused = stack.admin.get(URL, params=params)
        assert refused.status_code == 422, (params, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["errors"][0]["field"] == field


def test_only_the_admin_lists_institutions(stack: Stack) -> None:
    _institutions(stack, 1)
    for caller in (
        stack.principal("portal"),
        stack.principal("official"),
        stack.institution("自家银行"),
    ):
        answer = caller.get(URL)
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"
