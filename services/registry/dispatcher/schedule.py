"""When a failed delivery is tried again: the schedule with jitter, and a receiver's Retry-After."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class RetrySchedule:
    """Seconds to wait after each failed attempt; ``None`` once the schedule is exhausted."""

    def __init__(
        self, delays: Sequence[float], jitter: float = 0.1, rng: random.Random | None = None
    ) -> None:
        self.delays = tuple(delays)
        self.jitter = jitter
        self.rng = rng or random.Random()

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay_after(self, attempts: int, retry_after: float | None = None) -> float | None:
        """The wait after the ``attempts``-th failed attempt (1-based), or None: dead."""
        if attempts < 1 or attempts > len(self.delays):
            return None
        base = self.delays[attempts - 1]
        delay = base * (1 + self.rng.uniform(-self.jitter, self.jitter))
        if retry_after is not None and retry_after > delay:
            return retry_after
        return delay


def parse_retry_after(value: str | None, now: datetime, limit: float) -> float | None:
    """A Retry-After header in seconds (delta-seconds or an HTTP date), capped at ``limit``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if seconds <= 0:
        return None
    return min(seconds, limit)
