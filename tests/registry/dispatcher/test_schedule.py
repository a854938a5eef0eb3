"""The retry schedule: its jitter stays within ±10 %, it ends, and a longer Retry-After wins."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.registry.config import DEFAULT_RETRY_SCHEDULE, RegistrySettings
from services.registry.dispatcher.outcome import decide
from services.registry.dispatcher.schedule import RetrySchedule, parse_retry_after
from services.registry.dispatcher.sender import AttemptResult

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def test_the_default_schedule_spans_at_least_three_days() -> None:
    assert RegistrySettings().webhook_retry_schedule_seconds == DEFAULT_RETRY_SCHEDULE
    assert DEFAULT_RETRY_SCHEDULE[:5] == (5.0, 300.0, 1_800.0, 7_200.0, 18_000.0)
    # With every jitter at its shortest, the last attempt still comes after three days.
    assert sum(DEFAULT_RETRY_SCHEDULE) * 0.9 >= 3 * 86_400


def test_jitter_stays_within_ten_percent_and_varies() -> None:
    schedule = RetrySchedule((100.0,), jitter=0.1, rng=random.Random(1))
    delays = [schedule.delay_after(1) for _ in range(500)]
    assert all(d is not None and 90.0 <= d <= 110.0 for d in delays)
    assert len(set(delays)) > 100


def test_the_schedule_ends_in_a_dead_delivery() -> None:
    schedule = RetrySchedule((1.0, 2.0), jitter=0.0)
    assert [schedule.delay_after(n) for n in (1, 2, 3)] == [1.0, 2.0, None]
    assert schedule.max_attempts == 3


def test_retry_after_counts_only_when_longer() -> None:
    schedule = RetrySchedule((60.0,), jitter=0.0)
    assert schedule.delay_after(1, retry_after=120.0) == 120.0
    assert schedule.delay_after(1, retry_after=30.0) == 60.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (format_datetime(NOW + timedelta(minutes=3), usegmt=True), 180.0),
        ("999999999", 86_400.0),
        ("0", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW, 86_400.0) == seconds


@pytest.mark.parametrize(
    ("result", "status", "disable"),
    [
        (AttemptResult(200, 1), "delivered", None),
        (AttemptResult(299, 1), "delivered", None),
        (AttemptResult(None, 1, error="timeout"), "pending", None),
        (AttemptResult(500, 1), "pending", None),
        (AttemptResult(503, 1), "pending", None),
        (AttemptResult(429, 1), "pending", None),
        (AttemptResult(410, 1), "dead", "gone_410"),
        (AttemptResult(404, 1), "dead", None),
        (AttemptResult(400, 1), "dead", None),
        (AttemptResult(301, 1), "dead", None),
        (AttemptResult(None, 1, error="refused", refused=True), "dead", None),
    ],
)
def test_what_an_answer_means(result: AttemptResult, status: str, disable: str | None) -> None:
    outcome = decide(result, 1, NOW, RetrySchedule((5.0,), jitter=0.0), 86_400.0)
    assert (outcome.status, outcome.disable_reason) == (status, disable)
    if status == "pending":
        assert outcome.next_attempt_at == NOW + timedelta(seconds=5)


def test_a_retryable_failure_on_the_last_attempt_is_dead() -> None:
    schedule = RetrySchedule((5.0,), jitter=0.0)
    assert decide(AttemptResult(500, 1), 2, NOW, schedule, 86_400.0).status == "dead"
