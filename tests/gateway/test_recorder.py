"""The match-event recorder: batches, a bounded wait, retries, drops it counts, flush on stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from services.gateway.clients import DownstreamUnavailable, PassThrough
from services.gateway.recorder import MatchEventRecorder
from tests.polling import until

Event = dict[str, Any]


class Registry:
    """Takes batches of match events; ``failures`` are raised first, one per call."""

    def __init__(self, *failures: BaseException, delay: float = 0.0) -> None:
        self.failures = list(failures)
        self.delay = delay
        self.batches: list[list[Event]] = []
        self.calls = 0

    async def record_match_events(self, events: list[Event]) -> dict[str, int]:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            raise self.failures.pop(0)
        self.batches.append(list(events))
        return {"recorded": len(events)}

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]


def answers(n: int, per_answer: int = 20, start: int = 0) -> list[list[Event]]:
    return [[{"firm_id": start + a, "rank": r + 1} for r in range(per_answer)] for a in range(n)]


def recorder(registry: Registry, **options: Any) -> MatchEventRecorder:
    settings: dict[str, Any] = {"retry_seconds": 0.0} | options
    return MatchEventRecorder(registry, **settings)  # type: ignore[arg-type]


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


def test_many_answers_go_in_few_batches_in_order() -> None:
    registry = Registry()
    sent = answers(120)  # 2,400 events

    async def scenario() -> None:
        events = recorder(registry, batch=1_000, linger_seconds=30)
        events.start()
        for answer in sent:
            events.record(answer)
        # Two full batches go at once; the remaining 400 wait for more, or the (long) linger.
        await until(lambda: len(registry.batches) == 2)
        assert [len(b) for b in registry.batches] == [1_000, 1_000]
        await events.flush()
        assert events.sent == 2_400
        assert events.batches == 3
        await events.stop()

    run(scenario)
    assert registry.events == [event for answer in sent for event in answer]
    assert [len(b) for b in registry.batches] == [1_000, 1_000, 400]


def test_a_few_events_wait_no_longer_than_the_linger() -> None:
    registry = Registry()

    async def scenario() -> None:
        linger = 0.05
        events = recorder(registry, linger_seconds=linger)
        events.start()
        loop = asyncio.get_running_loop()
        for sent in ([20], [20, 20]):
            recorded_at = loop.time()
            events.record(answers(1)[0])
            calls = len(sent)
            await until(lambda calls=calls: registry.calls == calls)
            # Sent after gathering more for the linger (timed by the loop's clock), not before
            # (the loop may run a timer up to its clock resolution early).
            assert loop.time() - recorded_at >= linger - 0.001
            assert [len(b) for b in registry.batches] == sent
        await events.stop()

    run(scenario)


def test_stop_sends_what_is_buffered_at_once() -> None:
    registry = Registry()

    async def scenario() -> None:
        events = recorder(registry, linger_seconds=60)
        events.start()
        for answer in answers(3):
            events.record(answer)
        await asyncio.wait_for(events.stop(), timeout=1)
        assert events.dropped == 0

    run(scenario)
    assert len(registry.events) == 60


def test_a_registry_that_fails_briefly_loses_nothing() -> None:
    down = DownstreamUnavailable("registry", "down", retry_after=1)
    registry = Registry(down, down)

    async def scenario() -> None:
        events = recorder(registry, linger_seconds=0.01)
        events.start()
        events.record(answers(1)[0])
        await events.flush()
        assert events.dropped == 0
        await events.stop()

    run(scenario)
    assert registry.calls == 3
    assert len(registry.events) == 20


def test_refused_or_persistently_failed_batches_are_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = DownstreamUnavailable("registry", "down", retry_after=1)
    refused = PassThrough(400, {"detail": "no such firm"})
    registry = Registry(refused, down, down, down, RuntimeError("a bug"))

    async def scenario() -> None:
        events = recorder(registry, linger_seconds=0.0)
        events.start()
        for answer in answers(4):
            events.record(answer)
            await events.flush()
        assert events.dropped == 60  # refused, failed three times, the bug; the last went
        assert events.sent == 20
        await events.stop()

    with caplog.at_level("WARNING", logger="finmatch.gateway.events"):
        run(scenario)
    assert "dropped 20 match events: the registry did not take them: no such firm" in caplog.text
    assert "sending 20 match events failed" in caplog.text


def test_a_full_buffer_drops_new_events_and_never_blocks() -> None:
    registry = Registry(delay=0.2)

    async def scenario() -> None:
        events = recorder(registry, max_buffer=100, batch=50, linger_seconds=0)
        events.start()
        for answer in answers(10):  # 200 events while the first batch is on its way
            events.record(answer)
        assert events.dropped == 100
        await events.flush()
        await events.stop()
        assert events.sent == 100

    run(scenario)


def test_events_left_when_stop_gives_up_are_counted() -> None:
    registry = Registry(delay=5)

    async def scenario() -> None:
        events = recorder(registry, linger_seconds=0, stop_seconds=0.05)
        events.start()
        events.record(answers(1)[0])
        await until(lambda: registry.calls == 1)  # the first 20 are in flight
        events.record(answers(1)[0])
        await events.stop()
        assert events.dropped == 40  # 20 in flight, 20 never sent
        assert events.sent == 0

    run(scenario)


def test_one_refused_event_does_not_cost_the_rest_of_its_batch() -> None:
    class Registry422(Registry):
        async def record_match_events(self, events: list[Event]) -> dict[str, int]:
            self.calls += 1
            if any(event["firm_id"] == 13 for event in events):  # erased since it was shown
                raise PassThrough(422, {"detail": "events name a firm_id that does not exist"})
            self.batches.append(list(events))
            return {"recorded": len(events)}

    registry = Registry422()

    async def scenario() -> None:
        events = recorder(registry, linger_seconds=0.05)
        events.start()
        for answer in answers(50):  # 1,000 events, one batch
            events.record(answer)
        await events.flush()
        # Firm 13's events, and those sharing the one or two smallest parts they fall in.
        assert 20 <= events.dropped <= 2 * 1_000 // 2**6
        assert events.sent == 1_000 - events.dropped
        await events.stop()

    run(scenario)
    assert all(event["firm_id"] != 13 for event in registry.events)
    assert {event["firm_id"] for event in registry.events} == set(range(50)) - {13}
    assert registry.calls <= 1 + 4 * 6  # two halves a level, down two paths at most
