"""China time (UTC+8) for statistics: the days and months officials see on their calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

CHINA = timedelta(hours=8)
CHINA_TZ = timezone(CHINA)


def day_start(day: date) -> datetime:
    """00:00 China time of ``day``, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - CHINA


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_start(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_sql(conn: Connection, column: Any) -> Any:
    """The China-time month ('YYYY-MM') of a timestamp column, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("Asia/Shanghai", column), "YYYY-MM")
    return sa.func.strftime("%Y-%m", column, "+8 hours")


def date_sql(conn: Connection, column: Any) -> Any:
    """The China-time day of a timestamp column, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("Asia/Shanghai", column), sa.Date)
    return sa.func.date(column, "+8 hours")
