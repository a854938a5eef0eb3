"""Match events are sent to the registry in the background, in batches, off the request path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from services.gateway.clients import RegistryClient
from shared.errors import ProblemError

log = logging.getLogger("finmatch.gateway.events")

Event = dict[str, Any]
# A refused batch is halved at most this often: a batch of 1,000 down to parts of about 16
# events (one answer shows 20), at most 126 more requests, even if every event is refused.
MAX_SPLITS = 6


class MatchEventRecorder:
    """A bounded buffer drained by one task: requests never wait for the registry.

    ``record`` only appends. The task sends the buffer as one request (one INSERT) once it
    holds ``batch`` events, or ``linger_seconds`` after the first event came, whichever is
    sooner: at a few hundred answers a second the registry sees a few inserts a second rather
    than one per answer, and an event waits at most about ``linger_seconds`` under light load.
    A batch the registry fails (5xx, unreachable) is retried twice. One it refuses as invalid
    (422) is halved and each half sent again, so that one bad event does not cost the others;
    what is still refused is dropped. Events are telemetry, so past ``max_buffer`` unsent
    events (a registry down for minutes) new ones are dropped rather than making requests
    wait. Every drop is counted in ``dropped`` and logged. ``stop`` sends what is left (for up
    to ``stop_seconds``).
    """

    def __init__(
        self,
        registry: RegistryClient,
        *,
        max_buffer: int = 50_000,
        batch: int = 1_000,
        linger_seconds: float = 0.2,
        stop_seconds: float = 5.0,
        retry_seconds: float = 0.5,
    ) -> None:
        if batch < 1 or max_buffer < batch:
            raise ValueError("batch must be at least 1 and max_buffer at least batch")
        self._registry = registry
        self._max_buffer = max_buffer
        self._batch = batch
        self._linger = linger_seconds
        self._stop_seconds = stop_seconds
        self._retry_seconds = retry_seconds
        self._buffer: deque[Event] = deque()
        self._pending = asyncio.Event()  # the buffer holds something
        self._full = asyncio.Event()  # ... at least a batch, or we are stopping: send now
        self._idle = asyncio.Event()  # nothing buffered and nothing being sent
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.dropped = 0
        self.sent = 0
        self.batches = 0

    def record(self, events: list[Event]) -> None:
        """Queue the events of one answer; never waits, never raises."""
        room = self._max_buffer - len(self._buffer)
        if len(events) > room:
            self._drop(len(events) - max(room, 0), "the buffer is full")
            events = events[: max(room, 0)]
        if not events:
            return
        self._buffer.extend(events)
        self._idle.clear()
        self._pending.set()
        if len(self._buffer) >= self._batch:
            self._full.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain())

    async def flush(self) -> None:
        """Send what is buffered now, and wait until it is sent (or dropped)."""
        if self._buffer:
            self._full.set()
        await self._idle.wait()

    async def stop(self) -> None:
        """Send what is buffered (for up to ``stop_seconds``), then stop."""
        self._stopping = True
        if self._task is None:
            return
        self._full.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=self._stop_seconds)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._buffer:
            self._drop(len(self._buffer), "the gateway stopped before the registry took them")
            self._buffer.clear()

    async def _drain(self) -> None:
        while True:
            await self._pending.wait()
            if not self._full.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), timeout=self._linger)
            take = min(self._batch, len(self._buffer))
            events = [self._buffer.popleft() for _ in range(take)]
            if len(self._buffer) < self._batch and not self._stopping:
                self._full.clear()
            if not self._buffer:
                self._pending.clear()
            try:
                if events:
                    await self._send(events)
            except asyncio.CancelledError:
                self._drop(len(events), "the gateway stopped while sending them")
                raise
            finally:
                if not self._buffer:
                    self._idle.set()

    async def _send(self, events: list[Event], splits: int = 0) -> None:
        for attempt in range(3):
            try:
                await self._registry.record_match_events(events)
            except ProblemError as exc:
                if exc.status == 422 and len(events) > 1 and splits < MAX_SPLITS:
                    # The registry refuses a batch whole when one event names a firm erased
                    # since it was shown; halves keep the other answers' events.
                    half = len(events) // 2
                    await self._send(events[:half], splits + 1)
                    await self._send(events[half:], splits + 1)
                    return
                if exc.status < 500 or attempt == 2:
                    self._drop(len(events), f"the registry did not take them: {exc.detail}")
                    return
                await asyncio.sleep(self._retry_seconds * (attempt + 1))
            except Exception:  # a bug must not end the task that drains every later event
                log.exception("sending %d match events failed", len(events))
                self._drop(len(events), "sending them failed")
                return
            else:
                self.sent += len(events)
                self.batches += 1
                return

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        log.warning("dropped %d match events: %s", count, why)
