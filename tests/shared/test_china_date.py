"""China's calendar day, not the server's UTC one, dates what a firm is: at 01:00 in Dongguan
(17:00 UTC the day before) a firm founded today is not "in the future", and a past
application is dated by its day in Dongguan."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

import shared.china_date
from shared.china_date import china_date_of, today_in_china
from shared.schemas.firm import FirmCreate
from shared.schemas.history import HistoryFirm, HistoryLine
from tests.registry import data

# 2030-07-01 01:00 in Dongguan; still 2030-06-30 in UTC. (Years from the real date, so that a
# clock other than shared.china_date's, date.today() say, cannot pass these tests.)
EARLY_MORNING = datetime(2030, 6, 30, 17, 0, tzinfo=UTC)


@pytest.fixture
def early_morning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared.china_date, "_utcnow", lambda: EARLY_MORNING)


def test_the_day_in_dongguan_is_ahead_of_utc_until_eight(early_morning: None) -> None:
    assert today_in_china() == date(2030, 7, 1)
    assert china_date_of(EARLY_MORNING) == date(2030, 7, 1)
    assert china_date_of(datetime(2026, 12, 6, 15, 59, tzinfo=UTC)) == date(2026, 12, 6)
    # A naive time is read as UTC, as the database stores it.
    assert china_date_of(datetime(2026, 12, 6, 16, 0)) == date(2026, 12, 7)


def test_a_firm_founded_today_in_china_is_not_in_the_future(early_morning: None) -> None:
    founded_today = FirmCreate.model_validate(data.firm(established_on="2030-07-01"))
    assert founded_today.established_on == date(2030, 7, 1)
    with pytest.raises(ValidationError, match="in the future"):
        FirmCreate.model_validate(data.firm(established_on="2030-07-02"))


def history_line(**overrides: Any) -> dict[str, Any]:
    return {
        "product_id": 1,
        "firm": {k: v for k, v in data.firm().items() if k in HistoryFirm.model_fields} | overrides,
        "requested_amount_yuan": 1_000_000,
        "requested_term_months": 12,
        "submitted_at": "2026-03-01T20:00:00Z",  # 2026-03-02 04:00 in Dongguan
        "decided_at": "2026-03-05T02:00:00Z",
        "decision": {"outcome": "rejected", "rejection_reason": "insufficient_revenue"},
    }


def test_a_past_application_is_dated_by_its_day_in_china() -> None:
    line = HistoryLine.model_validate(history_line(established_on="2026-03-02"))
    assert line.firm.established_on == date(2026, 3, 2)
    with pytest.raises(ValidationError, match="established_on"):
        HistoryLine.model_validate(history_line(established_on="2026-03-03"))
