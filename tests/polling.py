"""Waiting for something to happen in a test: poll a condition until a deadline, never a fixed
sleep that hopes the work is done by then (too short on a busy machine, too long elsewhere)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEFAULT_TIMEOUT = 10.0
INTERVAL = 0.01


def wait_until(
    condition: Callable[[], object], timeout: float = DEFAULT_TIMEOUT, interval: float = INTERVAL
) -> None:
    """Return once ``condition()`` is truthy; fail after ``timeout`` seconds. A condition that
    asks a rate-limited API takes a longer ``interval``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {getattr(condition, '__name__', '')}")
        time.sleep(interval)


async def until(condition: Callable[[], object], timeout: float = DEFAULT_TIMEOUT) -> None:
    """``wait_until`` for a coroutine: the event loop runs on while it waits."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {getattr(condition, '__name__', '')}")
        await asyncio.sleep(INTERVAL)
