"""A breakdown's rows: labelled, and withheld when too few firms stand behind one.

Privacy: a cell drawn from fewer than ``MIN_CELL_FIRMS`` distinct firms is suppressed (its
figures are None), so no single firm can be picked out of a table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.registry.stats.measures import ratio
from services.registry.stats.tables import INST
from shared.schemas.stats import Dimension
from shared.vocab.labels import category_label, section_label, size_class_label, town_label

MIN_CELL_FIRMS = 3

BREAKDOWN_FIGURES = (
    "firms",
    "applications",
    "approved",
    "rejected",
    "pending",
    "approval_rate",
    "requested_amount_yuan",
    "approved_amount_yuan",
    "first_loan_approved",
)


def withheld(figures: Iterable[str]) -> dict[str, Any]:
    """A suppressed cell's figures: each None, and said to be suppressed."""
    return dict.fromkeys(figures) | {"suppressed": True}


def labels(conn: Connection, by: Dimension, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
    """(Chinese, English) label of each key of a breakdown ``by`` a dimension."""
    if by is Dimension.TOWN:
        return {k: town_label(k) for k in keys}
    if by is Dimension.CATEGORY:
        return {k: category_label(k) for k in keys}
    if by is Dimension.SIZE_CLASS:
        return {k: size_class_label(k) for k in keys}
    if by is Dimension.INDUSTRY:
        return {k: section_label(k) for k in keys}
    if by is Dimension.INSTITUTION:
        names: dict[str, str] = {
            str(i): str(n) for i, n in conn.execute(sa.select(INST.c.id, INST.c.name))
        }
        return {k: (names.get(k, k), names.get(k, k)) for k in keys}
    return {k: (k, k) for k in keys}


def breakdown_cell(key: str, zh: str, en: str, **n: int) -> dict[str, Any]:
    """One breakdown row from its counts and amounts (withheld below ``MIN_CELL_FIRMS``)."""
    cell: dict[str, Any] = {"key": key, "label_zh": zh, "label_en": en}
    if n["firms"] < MIN_CELL_FIRMS:
        return cell | withheld(BREAKDOWN_FIGURES)
    return cell | {
        "firms": n["firms"],
        "applications": n["applications"],
        "approved": n["approved"],
        "rejected": n["rejected"],
        "pending": n["pending"],
        "approval_rate": ratio(n["approved"], n["approved"] + n["rejected"]),
        "requested_amount_yuan": n["requested"],
        "approved_amount_yuan": n["approved_amount"],
        "first_loan_approved": n["first_loans"],
        "suppressed": False,
    }


def gap_cell(town: str, section: str, matched: int, without_application: int) -> dict[str, Any]:
    """A row of matched firms that never applied (withheld below ``MIN_CELL_FIRMS`` matched)."""
    town_zh, town_en = town_label(town)
    section_zh, section_en = section_label(section)
    suppressed = matched < MIN_CELL_FIRMS
    return {
        "town_code": town,
        "town_zh": town_zh,
        "town_en": town_en,
        "industry_section": section,
        "section_zh": section_zh,
        "section_en": section_en,
        "firms_matched": None if suppressed else matched,
        "firms_matched_no_application": None if suppressed else without_application,
        "suppressed": suppressed,
    }
