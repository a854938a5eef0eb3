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

    The pause is short at first (``reset_seconds``), so that the first answer after a blip
    comes within seconds of the downstream's return, and doubles with each failed trial up to
    ``max_reset_seconds`` (3 s by default: one trial call every 3 s costs a dead downstream
    nothing, and a returning one is used again within the 5 s that issue 11 sets). A
    successful call closes the breaker and resets the pause.

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
        reset_seconds: float = 2.0,
        *,
        max_reset_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.max_reset_seconds = max(max_reset_seconds, reset_seconds)
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._pause = reset_seconds  # of the current (or next) open period

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self.seconds_until_trial() <= 0:
            return "half_open"  # the next call will be the trial
        return self._state

    @property
    def failures(self) -> int:
        return self._failures

    @property
    def pause_seconds(self) -> float:
        """How long the breaker stays open when it opens (again) now."""
        return self._pause

    def seconds_until_trial(self) -> float:
        if self._state == "closed":
            return 0.0
        return max(0.0, self._opened_at + self._pause - self._clock())

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
        self._pause = self.reset_seconds
        if self._state != "closed":
            self._move("closed")

    def record_failure(self) -> None:
        self._failures += 1
        if self._state == "half_open":  # the trial failed: wait longer before the next one
            self._pause = min(self._pause * 2, self.max_reset_seconds)
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
