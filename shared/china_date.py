"""The calendar day in Dongguan (UTC+8, no daylight saving).

A firm's age, an "established on" that may not lie in the future, a certificate's last day and
the statistics' months all follow China's calendar, whatever the server's time zone (the images
run in UTC): between 00:00 and 08:00 China time the UTC date is still yesterday's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

CHINA_TZ = timezone(timedelta(hours=8))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def today_in_china() -> date:
    """Today in Dongguan."""
    return _utcnow().astimezone(CHINA_TZ).date()


def china_date_of(instant: datetime) -> date:
    """The day in Dongguan at ``instant`` (a naive datetime is read as UTC, as stored)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(CHINA_TZ).date()
