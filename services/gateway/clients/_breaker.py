"""The circuit breaker that keeps the gateway from waiting on a downstream that keeps failing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from prometheus_client import Counter

BREAKER_TRANSITIONS = Counter(
    "finmatch_circuit_breaker_transitions_total",
    "Circuit-breaker state changes, by downstream service and from/to state "
    "(closed, half_open, open).",
    ["downstream", "from_state", "to_state"],
)

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Consecutive-failure breaker: closed → open → (after a pause) one trial call → closed.

    Our own small class rather than a library: the asyncio-capable ones (circuitbreaker 2.x,
    purgatory 3.x) let every concurrent call through once half-open, read a clock that tests
    cannot inject, and report the state under other names; this one admits exactly one trial.

    Each change of the stored state is counted in BREAKER_TRANSITIONS under ``name`` (the
    downstream client that uses the breaker names it). The open → half-open change is counted
    when the trial call goes out, not when the pause ends.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self.seconds_until_trial() <= 0:
            return "half_open"  # the next call will be the trial
        return self._state

    @property
    def failures(self) -> int:
        return self._failures

    def seconds_until_trial(self) -> float:
        if self._state == "closed":
            return 0.0
        return max(0.0, self._opened_at + self.reset_seconds - self._clock())

    def allow(self) -> bool:
        """Whether a call may go out now; a True in the half-open state takes the one trial."""
        if self._state == "closed":
            return True
        if self._state == "open" and self.seconds_until_trial() <= 0:
            self._move("half_open")
            return True
        return False  # open, or half-open with the trial still in flight

    def record_success(self) -> None:
        self._failures = 0
        if self._state != "closed":
            self._move("closed")

    def record_failure(self) -> None:
        self._failures += 1
        if self._state == "half_open" or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            if self._state != "open":
                self._move("open")

    def release(self) -> None:
        """A call ended without a verdict (cancelled): a trial slot becomes free again."""
        if self._state == "half_open":
            self._move("open")

    def _move(self, state: BreakerState) -> None:
        BREAKER_TRANSITIONS.labels(self.name or "unnamed", self._state, state).inc()
        self._state = state
