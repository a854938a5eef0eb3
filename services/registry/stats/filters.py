"""What every statistics query narrows by (a period, a town, a category), as SQL conditions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement

from services.registry.stats.china_time import day_start
from services.registry.stats.tables import APP, PROD


@dataclass(frozen=True)
class Filters:
    """What every statistics query narrows by: a period [date_from, date_to), a town, a category.

    The period is in China time (UTC+8): a day is the day an official sees on the calendar.
    """

    date_from: date | None = None
    date_to: date | None = None
    town_code: str | None = None
    category: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "date_from": None if self.date_from is None else self.date_from.isoformat(),
            "date_to": None if self.date_to is None else self.date_to.isoformat(),
            "town_code": self.town_code,
            "category": self.category,
        }


def period(column: Any, filters: Filters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.date_from is not None:
        where.append(column >= day_start(filters.date_from))
    if filters.date_to is not None:
        where.append(column < day_start(filters.date_to))
    return where


def in_category(product_column: Any, category: str) -> ColumnElement[bool]:
    result: ColumnElement[bool] = product_column.in_(
        sa.select(PROD.c.id).where(PROD.c.category == category).scalar_subquery()
    )
    return result


def application_where(filters: Filters) -> list[ColumnElement[bool]]:
    where = period(APP.c.submitted_at, filters)
    if filters.town_code is not None:
        where.append(APP.c.town_code == filters.town_code)
    if filters.category is not None:
        where.append(in_category(APP.c.product_id, filters.category))
    return where
