"""Coverage of the official registers: of the firms on a current list (valid today) that are
registered with us, how many were matched, applied and were approved; for the green list, how
many reached green credit (action-plan item 44). Counted from the rows at each request.

A firm counts once per register however many entries it has there (a firm with two
procurement contracts is one firm). "Matched", "applied" and "approved" are over the firm's
whole history on the platform, not only since it was listed: the question is whether listed
firms reach financing, and a list names firms that already exist.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.registry.registers.provenance import published_registers
from services.registry.registers.tables import ENTRY, current_uploads
from services.registry.stats.cells import MIN_CELL_FIRMS
from services.registry.stats.tables import APP, APPROVED, EVENT, FIRM, PROD
from shared.enums import RegisterKind
from shared.schemas.registers import REGISTER_LABELS
from shared.vocab.categories import ProductCategory
from shared.vocab.labels import town_label

FIGURES = ("firms", "matched", "applied", "approved", "green_credit")
# Which register asks which extra question: the green list, whether its firms got green credit.
GREEN_CREDIT_OF = {RegisterKind.GREEN_LIST: ProductCategory.GREEN}


def _listed_firms(today: date, town_code: str | None, kinds: list[str]) -> sa.Subquery:
    """(kind, firm id, town) of each registered firm with an entry valid today."""
    stmt = (
        sa.select(ENTRY.c.kind, FIRM.c.id.label("firm_id"), FIRM.c.town_code)
        .select_from(ENTRY.join(FIRM, FIRM.c.credit_code == ENTRY.c.credit_code))
        .where(ENTRY.c.kind.in_(kinds))
        .where(ENTRY.c.removed_in.is_(None))
        .where(ENTRY.c.added_in.in_(current_uploads()))
        .where(ENTRY.c.starts_on <= today)
        .where(sa.or_(ENTRY.c.ends_on.is_(None), ENTRY.c.ends_on >= today))
        .distinct()
    )
    if town_code is not None:
        stmt = stmt.where(FIRM.c.town_code == town_code)
    return stmt.subquery("listed")


def _counts(conn: Connection, today: date, town_code: str | None, kinds: list[str]) -> list[Any]:
    """Per (kind, town): firms, and how many of them were matched, applied, approved and got
    green credit (each an EXISTS per firm, so a firm counts once)."""
    listed = _listed_firms(today, town_code, kinds)
    firm_id = listed.c.firm_id

    def firms_where(condition: Any) -> Any:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    matched = sa.exists().where(EVENT.c.firm_id == firm_id)
    applied = sa.exists().where(APP.c.firm_id == firm_id)
    approved = sa.exists().where(APP.c.firm_id == firm_id, APP.c.status == APPROVED)
    green = (
        sa.exists()
        .where(APP.c.firm_id == firm_id, APP.c.status == APPROVED)
        .where(PROD.c.id == APP.c.product_id, PROD.c.category == ProductCategory.GREEN.value)
    )
    stmt = (
        sa.select(
            listed.c.kind,
            listed.c.town_code,
            sa.func.count().label("firms"),
            firms_where(matched).label("matched"),
            firms_where(applied).label("applied"),
            firms_where(approved).label("approved"),
            firms_where(sa.and_(listed.c.kind == RegisterKind.GREEN_LIST.value, green)).label(
                "green_credit"
            ),
        )
        .group_by(listed.c.kind, listed.c.town_code)
        .order_by(listed.c.kind, listed.c.town_code)
    )
    return list(conn.execute(stmt))


def _row(kind: RegisterKind, figures: dict[str, int], *, suppress: bool) -> dict[str, Any]:
    zh, en = REGISTER_LABELS[kind]
    row: dict[str, Any] = {"kind": kind.value, "label_zh": zh, "label_en": en}
    if suppress and figures["firms"] < MIN_CELL_FIRMS:
        return row | dict.fromkeys(FIGURES) | {"suppressed": True}
    green = figures["green_credit"] if kind in GREEN_CREDIT_OF else None
    return (
        row
        | {k: int(figures[k]) for k in FIGURES[:-1]}
        | {"green_credit": green}
        | {"suppressed": False}
    )


def register_coverage(
    conn: Connection, today: date, town_code: str | None, kind: RegisterKind | None
) -> dict[str, Any]:
    """The coverage answer: totals per register for the scope (the city, or one town), and a
    row per town with listed firms, whose cells of fewer than ``MIN_CELL_FIRMS`` firms are
    withheld. Every register kind has a total row, published or not (zeros until it is)."""
    kinds = [kind] if kind is not None else list(RegisterKind)
    published = published_registers(conn)
    empty = dict.fromkeys(FIGURES, 0)
    totals: dict[str, dict[str, int]] = {k.value: dict(empty) for k in kinds}
    by_town: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for row in _counts(conn, today, town_code, [k.value for k in kinds]):
        figures = {name: int(getattr(row, name) or 0) for name in FIGURES}
        by_town[row.town_code][row.kind] = figures
        for name in FIGURES:
            totals[row.kind][name] += figures[name]

    def register_rows(cells: dict[str, dict[str, int]], *, suppress: bool) -> list[dict[str, Any]]:
        return [_row(k, cells.get(k.value, empty), suppress=suppress) for k in kinds]

    towns = []
    for town in sorted(by_town):
        zh, en = town_label(town)
        rows = register_rows(by_town[town], suppress=True)
        towns.append({"town_code": town, "town_zh": zh, "town_en": en, "registers": rows})
    registers = []
    for row in register_rows(totals, suppress=False):
        listed = published.get(row["kind"])
        registers.append(
            row
            | {
                "version": None if listed is None else listed.version,
                "as_of": None if listed is None else listed.as_of,
            }
        )
    return {
        "as_of": today,
        "scope": "city" if town_code is None else "town",
        "town_code": town_code,
        "registers": registers,
        "by_town": towns,
    }
