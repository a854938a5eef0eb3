"""Official register uploads: line errors and refused files, replace against append, the diff,
resuming by upload_id, idempotency, who may upload, and the audit trail."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.vocab.credit_code import make_dongguan_credit_code
from tests.registry import data
from tests.registry.conftest import Actor, make_principal

NDJSON = {"Content-Type": "application/x-ndjson"}
BAD_CHECK = make_dongguan_credit_code(3)[:-1] + (
    "0" if make_dongguan_credit_code(3)[-1] != "0" else "1"
)


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(row) for row in rows) + b"\n"


def answer(response: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    return lines[:-1], lines[-1]


def upload(
    actor: Actor,
    kind: str,
    rows: list[dict[str, Any]] | bytes,
    upload_id: str,
    *,
    append: bool = False,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> Any:
    body = rows if isinstance(rows, bytes) else ndjson(rows)
    query = {"upload_id": upload_id, **params} | ({"mode": "append"} if append else {})
    return actor.request(
        "POST" if append else "PUT",
        f"/v1/registers/{kind}",
        params=query,
        content=body,
        headers=NDJSON if headers is None else headers,
    )


@pytest.fixture
def city(admin: Actor) -> Actor:
    return make_principal(admin, "official")


def versions(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT kind, version FROM register")).all()
        return {row.kind: row.version for row in rows}


# --- replace, append and the diff ------------------------------------------------------------


def test_replace_then_replace_again_answers_the_diff(city: Actor, engine: Engine) -> None:
    first = [data.register_line("high_tech", seq) for seq in (1, 2, 3)]
    results, tail = answer(upload(city, "high_tech", first, "ht-1"))
    assert results == []  # only refused lines are answered one by one
    assert tail["summary"] == {"lines": 3, "accepted": 3, "invalid": 0, "not_written": 0}
    assert tail["upload"]["version"] == 1
    assert tail["upload"]["diff"] == {"added": 3, "removed": 0, "changed": 0, "unchanged": 0}

    second = [
        data.register_line("high_tech", 1),  # unchanged
        data.register_line("high_tech", 2, certificate_number="GR202544000999"),  # changed
        data.register_line("high_tech", 4),  # added; firm 3 is removed
    ]
    _results, tail = answer(upload(city, "high_tech", second, "ht-2"))
    assert tail["upload"]["version"] == 2
    assert tail["upload"]["diff"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 1}
    assert versions(engine) == {"high_tech": 2}


def test_append_adds_and_changes_but_removes_nothing(city: Actor, engine: Engine) -> None:
    answer(upload(city, "green_list", [data.register_line("green_list", s) for s in (1, 2)], "g1"))
    more = [
        data.register_line("green_list", 2, sector="清洁能源"),  # changed
        data.register_line("green_list", 5),  # added
    ]
    _results, tail = answer(upload(city, "green_list", more, "g2", append=True))
    assert tail["upload"]["mode"] == "append"
    assert tail["upload"]["diff"] == {"added": 1, "removed": 0, "changed": 1, "unchanged": 0}
    # The current list: firms 1 (kept), 2 (the new sector) and 5.
    with engine.connect() as conn:
        current = conn.execute(
            sa.text(
                "SELECT credit_code, fields FROM register_entry WHERE kind = 'green_list' "
                "AND removed_in IS NULL ORDER BY credit_code"
            )
        ).all()
    codes = {make_dongguan_credit_code(s): s for s in (1, 2, 5)}
    assert sorted(codes[code] for code, _ in current) == [1, 2, 5]
    sectors = {codes[code]: _json(fields)["sector"] for code, fields in current}
    assert sectors[2] == "清洁能源"


def _json(value: Any) -> dict[str, Any]:
    return orjson.loads(value) if isinstance(value, str | bytes) else dict(value)


def test_procurement_awards_are_keyed_by_firm_and_contract(city: Actor) -> None:
    two = [
        data.register_line("gov_procurement_awards", 1),
        data.register_line("gov_procurement_awards", 1, contract_number="DGCG-2025-B"),
    ]
    _results, tail = answer(upload(city, "gov_procurement_awards", two, "p1"))
    assert tail["upload"]["diff"]["added"] == 2
    twice = [data.register_line("gov_procurement_awards", 1)] * 2
    results, tail = answer(upload(city, "gov_procurement_awards", twice, "p2"))
    assert results == [
        {
            "line": 2,
            "status": "invalid",
            "errors": [{"field": "credit_code", "message": "duplicate of line 1"}],
        }
    ]
    assert tail["upload"]["diff"] == {"added": 0, "removed": 1, "changed": 0, "unchanged": 1}


# --- bad lines -----------------------------------------------------------------------------


def test_a_failed_checksum_is_a_line_error_and_the_upload_goes_on(city: Actor) -> None:
    rows = [
        data.register_line("specialized_sme", 1),
        data.register_line("specialized_sme", 2, credit_code=BAD_CHECK),
        data.register_line("specialized_sme", 4, credit_code="9144190012345"),
        data.register_line("specialized_sme", 5),
    ]
    results, tail = answer(upload(city, "specialized_sme", rows, "s1"))
    assert [(r["line"], r["status"]) for r in results] == [(2, "invalid"), (3, "invalid")]
    assert [e["field"] for r in results for e in r["errors"]] == ["credit_code", "credit_code"]
    assert "check character" in results[0]["errors"][0]["message"]
    assert "18 characters" in results[1]["errors"][0]["message"]
    assert tail["summary"] == {"lines": 4, "accepted": 2, "invalid": 2, "not_written": 0}
    assert tail["upload"]["status"] == "published"
    assert (tail["upload"]["entries"], tail["upload"]["invalid_lines"]) == (2, 2)


BAD_FILES = [
    pytest.param("high_tech", {"valid_from": "2024-02-30"}, "valid_from", id="impossible-date"),
    pytest.param("high_tech", {"valid_from": "01/12/2024"}, "valid_from", id="not-iso"),
    pytest.param("high_tech", {"valid_from": 20241201}, "valid_from", id="date-as-number"),
    pytest.param("high_tech", {"valid_to": "2024-11-30"}, "valid_to", id="ends-before-start"),
    pytest.param("high_tech", {"valid_to": "2027-12-01"}, "valid_to", id="past-three-years"),
    pytest.param("green_list", {"list_date": "2999-01-01"}, "list_date", id="future"),
    pytest.param(
        "gov_procurement_awards", {"end_date": "2025-02-28"}, "end_date", id="end-before-award"
    ),
    pytest.param("specialized_sme", {"level": "county"}, "level", id="unknown-level"),
    pytest.param("specialized_sme", {"year": "2024"}, "year", id="year-as-text"),
    pytest.param("green_list", {"certificate_number": "GR1"}, "certificate_number", id="unknown"),
    pytest.param("green_list", {"sector": None}, "sector", id="null"),
]


@pytest.mark.parametrize(("kind", "change", "field"), BAD_FILES)
def test_a_bad_field_refuses_the_upload_naming_it(
    city: Actor, engine: Engine, kind: str, change: dict[str, Any], field: str
) -> None:
    rows = [data.register_line(kind, 1), data.register_line(kind, 2) | change]
    response = upload(city, kind, rows, "bad")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "invalid_register_line"
    assert [(e["line"], e["field"]) for e in problem["errors"]] == [(2, field)]
    assert versions(engine) == {}  # nothing published


def test_a_line_that_is_no_json_object_refuses_the_upload(city: Actor) -> None:
    body = ndjson([data.register_line("green_list", 1)]) + b'{"credit_code": \n'
    response = upload(city, "green_list", body, "broken")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["line"] == 2


def test_an_unknown_kind_is_422_naming_it(city: Actor) -> None:
    response = upload(city, "first_loan", [data.register_line("green_list", 1)], "x")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "kind"


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "", "text/csv; charset=latin-1"]
)
def test_a_body_in_another_format_is_415(city: Actor, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = upload(
        city, "green_list", [data.register_line("green_list", 1)], "x", headers=headers
    )
    assert response.status_code == 415, response.text
    assert response.json()["errors"][0]["field"] == "Content-Type"


def test_append_needs_mode_append(city: Actor) -> None:
    response = city.post(
        "/v1/registers/green_list",
        params={"upload_id": "x", "mode": "replace"},
        content=ndjson([data.register_line("green_list", 1)]),
        headers=NDJSON,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "mode"


def test_a_replace_with_no_valid_line_publishes_nothing(city: Actor, engine: Engine) -> None:
    answer(upload(city, "green_list", [data.register_line("green_list", 1)], "g1"))
    response = upload(
        city, "green_list", [data.register_line("green_list", 1, credit_code=BAD_CHECK)], "g2"
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "empty_register_upload"
    assert versions(engine) == {"green_list": 1}


@pytest.mark.parametrize("as_of", ["2999-01-01", "1980-01-01", "yesterday"])
def test_a_bad_as_of_is_422(city: Actor, as_of: str) -> None:
    response = upload(city, "green_list", [data.register_line("green_list", 1)], "x", as_of=as_of)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "as_of"


# --- CSV -----------------------------------------------------------------------------------


def csv_body(lines: list[str], encoding: str = "utf-8") -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def test_a_csv_upload_numbers_lines_as_the_file_does(city: Actor) -> None:
    code = make_dongguan_credit_code(1)
    body = csv_body(
        [
            "credit_code,name,level,year",
            f"{code},东莞市测试1电子有限公司,national,2024",
            f"{BAD_CHECK},,provincial,2023",
            f'"{make_dongguan_credit_code(2)}","东莞市测试2, 有限公司",municipal,2025',
        ]
    )
    csv_headers = {"Content-Type": "text/csv"}
    results, tail = answer(upload(city, "specialized_sme", body, "c1", headers=csv_headers))
    assert [(r["line"], r["errors"][0]["field"]) for r in results] == [(3, "credit_code")]
    assert tail["summary"]["accepted"] == 2
    assert tail["upload"]["diff"]["added"] == 2


def test_a_gb18030_csv_is_read(city: Actor, portal: Actor) -> None:
    firm = portal.post("/v1/firms", json=data.firm(1, is_green_listed=True)).json()
    body = csv_body(
        ["credit_code,list_date,sector", f"{make_dongguan_credit_code(1)},2024-06-30,节能环保"],
        "gb18030",
    )
    headers = {"Content-Type": "text/csv; charset=GB18030"}
    answer(upload(city, "green_list", body, "gbk", headers=headers))
    provenance = portal.get(f"/v1/firms/{firm['id']}").json()["provenance"]["is_green_listed"]
    assert provenance["evidence"][0]["sector"] == "节能环保"


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("credit_code,list_date,sector,colour", "colour"),
        ("credit_code,sector", "list_date"),
        ("credit_code,list_date,sector,sector", "sector"),
    ],
)
def test_a_bad_csv_header_is_422_naming_the_column(
    city: Actor, engine: Engine, header: str, field: str
) -> None:
    body = csv_body([header, f"{make_dongguan_credit_code(1)},2024-06-30,节能环保"])
    response = upload(city, "green_list", body, "h", headers={"Content-Type": "text/csv"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert versions(engine) == {}


def test_a_csv_row_with_a_cell_too_many_refuses_the_upload(city: Actor) -> None:
    body = csv_body(
        ["credit_code,list_date,sector", f"{make_dongguan_credit_code(1)},2024-06-30,环保,extra"]
    )
    response = upload(city, "green_list", body, "h", headers={"Content-Type": "text/csv"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0] == {
        "line": 2,
        "field": "line",
        "message": "4 cells, the header has 3 columns",
    }


# --- resuming and repeating ----------------------------------------------------------------


def test_a_refused_upload_resumes_by_upload_id(city: Actor, engine: Engine) -> None:
    rows = [data.register_line("high_tech", seq) for seq in range(1, 8)]
    broken = [*rows[:5], rows[5] | {"valid_from": "2024-13-01"}, rows[6]]
    refused = upload(city, "high_tech", broken, "resume", batch_size=2)
    assert refused.status_code == 422, refused.text
    assert versions(engine) == {}
    with engine.connect() as conn:
        staged = conn.execute(sa.text("SELECT count(*) FROM register_entry")).scalar_one()
    assert staged == 4  # the two batches before line 6's, unpublished

    results, tail = answer(upload(city, "high_tech", rows, "resume", batch_size=2))
    assert results == []
    assert tail["batches"] == {"committed": 2, "rejected": 0, "already_committed": 2, "conflict": 0}
    assert tail["upload"]["diff"]["added"] == 7
    assert tail["upload"]["entries"] == 7


def test_resending_a_published_upload_changes_nothing(city: Actor, engine: Engine) -> None:
    rows = [data.register_line("green_list", seq) for seq in (1, 2, 3)]
    _results, first = answer(upload(city, "green_list", rows, "once", batch_size=2))
    _results, again = answer(upload(city, "green_list", rows, "once", batch_size=2))
    assert again["upload"] == first["upload"]
    assert again["batches"]["already_committed"] == 2
    assert versions(engine) == {"green_list": 1}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM register_entry")).scalar_one() == 3
        publishes = conn.execute(
            sa.text("SELECT count(*) FROM audit_log WHERE action = 'register_replace'")
        ).scalar_one()
    assert publishes == 1


def test_a_published_upload_resent_with_other_lines_is_409(city: Actor, engine: Engine) -> None:
    rows = [data.register_line("green_list", seq) for seq in (1, 2)]
    answer(upload(city, "green_list", rows, "once", batch_size=2))
    longer = upload(
        city, "green_list", [*rows, data.register_line("green_list", 3)], "once", batch_size=2
    )
    assert longer.status_code == 409, longer.text
    changed = upload(
        city, "green_list", [rows[0], data.register_line("green_list", 9)], "once", batch_size=2
    )
    assert changed.status_code == 409, changed.text
    assert changed.json()["errors"][0]["field"] == "upload_id"
    assert versions(engine) == {"green_list": 1}


def test_an_upload_id_keeps_its_mode(city: Actor) -> None:
    answer(upload(city, "green_list", [data.register_line("green_list", 1)], "m"))
    response = upload(city, "green_list", [data.register_line("green_list", 1)], "m", append=True)
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "upload_mode_differs"


def test_each_publish_is_audited_with_its_diff(city: Actor, engine: Engine) -> None:
    answer(
        upload(city, "green_list", [data.register_line("green_list", 1)], "a", as_of="2026-01-15")
    )
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT principal_id, entity, entity_id, detail FROM audit_log "
                "WHERE action = 'register_replace'"
            )
        ).one()
    assert (row.principal_id, row.entity, row.entity_id) == (city.id, "register", "green_list:1")
    detail = _json(row.detail)
    assert detail["upload_id"] == "a"
    assert detail["as_of"] == "2026-01-15"
    assert (detail["added"], detail["removed"]) == (1, 0)


# --- who may upload ------------------------------------------------------------------------


def test_only_the_city_and_admins_upload(
    admin: Actor, portal: Actor, bank: Actor, engine: Engine
) -> None:
    town = make_principal(admin, "official", town_code="441900116")
    city = make_principal(admin, "official")
    rows = [data.register_line("green_list", 1)]
    for caller in (portal, bank, town):
        for append in (False, True):
            refused = upload(caller, "green_list", rows, "t", append=append)
            assert refused.status_code == 404, refused.text
    assert versions(engine) == {}
    for n, caller in enumerate((city, admin)):
        answer(upload(caller, "green_list", rows, f"ok-{n}"))
    assert versions(engine) == {"green_list": 2}


def test_there_is_no_way_to_list_a_register(city: Actor, admin: Actor) -> None:
    answer(upload(city, "green_list", [data.register_line("green_list", 1)], "x"))
    for actor in (city, admin):
        assert actor.get("/v1/registers/green_list").status_code == 405
        assert actor.get("/v1/registers").status_code == 404
