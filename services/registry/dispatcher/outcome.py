"""What an attempt's result means for its delivery and its endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from services.registry.dispatcher.schedule import RetrySchedule, parse_retry_after
from services.registry.dispatcher.sender import AttemptResult

DeliveryStatus = Literal["pending", "delivered", "dead"]
GONE: Final = "gone_410"
FAILING: Final = "failing_5_days"
# Worth trying again: the receiver or the network may recover. Any other non-2xx answer (a
# redirect, which is never followed, or a 4xx) is the receiver saying no: the delivery is dead.
_RETRY_AFTER_HONOURED: Final = frozenset({429, 503})


def is_retryable(result: AttemptResult) -> bool:
    if result.refused:
        return False
    code = result.status_code
    return code is None or code == 429 or code >= 500


@dataclass(frozen=True)
class Outcome:
    status: DeliveryStatus
    next_attempt_at: datetime | None = None
    # The endpoint is disabled at once for this reason (a 410).
    disable_reason: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "delivered"


def decide(
    result: AttemptResult,
    attempts: int,
    now: datetime,
    schedule: RetrySchedule,
    retry_after_limit: float,
) -> Outcome:
    """The delivery's new state after its ``attempts``-th attempt (counting this one)."""
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return Outcome("delivered")
    if code == 410:
        return Outcome("dead", disable_reason=GONE)
    if not is_retryable(result):
        return Outcome("dead")
    retry_after = None
    if code in _RETRY_AFTER_HONOURED:
        retry_after = parse_retry_after(result.retry_after, now, retry_after_limit)
    delay = schedule.delay_after(attempts, retry_after)
    if delay is None:
        return Outcome("dead")
    return Outcome("pending", next_attempt_at=now + timedelta(seconds=delay))
