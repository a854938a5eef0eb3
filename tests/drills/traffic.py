"""A small load generator for the drills: reads and writes through the gateway, every answer kept.

Worker threads, each with its own HTTP client, cycle through a mix of reads (a firm, its
matches, the official's overview) and writes (a firm created with an Idempotency-Key, an
application with one). A write that got no final answer (no answer, a 5xx, or 409 while its
key is in flight) is sent again with the same key and body at the worker's next write turn,
as a careful client would; every fourth acknowledged write is also sent once more with its key,
to check that a repeat makes no second record. ``Answer`` records are what the checks read.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from tests.registry import data

WRITES = ("create_firm", "apply")
MIX = ("get_firm", "matches", "create_firm", "stats", "apply", "matches")
FIRM_SEQ_START = 70_000_000  # credit codes of firms the traffic creates, clear of the pool's
REPEAT_EVERY = 4  # every 4th acknowledged write is sent once more with its key


@dataclass(frozen=True)
class Answer:
    """One request and what came back (status None: no HTTP answer at all)."""

    kind: str
    started: float  # time.monotonic()
    ended: float
    status: int | None
    retry_after: str | None = None
    body: bytes = b""
    key: str | None = None  # the Idempotency-Key of a write
    target: str | None = None  # a firm's credit code, or "firm_id:product_id" of an application
    error: str | None = None
    stale: str | None = None  # X-Finmatch-Stale: an earlier copy, served while a service is down

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None

    def created_id(self) -> int | None:
        body = self.json()
        return body.get("id") if self.ok and isinstance(body, dict) else None

    def describe(self) -> str:
        body = self.body[:300].decode(errors="replace")
        return (
            f"{self.kind} → {self.status} {self.error or ''} Retry-After={self.retry_after} {body}"
        )


@dataclass
class World:
    """What the traffic works on: the gateway, keys, a pool of the portal's firms and products."""

    gateway: str
    portal_key: str
    official_key: str
    firm_ids: list[int]
    product_ids: list[int]


@dataclass
class _Write:
    kind: str
    key: str
    target: str
    body: dict[str, Any]
    repeat: bool = False  # a deliberate repeat of an acknowledged write


@dataclass
class Traffic:
    """Start with ``with``; the workers stop when the block ends."""

    world: World
    workers: int = 3
    pause_seconds: float = 0.02  # between one worker's requests: keeps two cores usable
    timeout_seconds: float = 30.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _firm_seq: Iterator[int] = field(default_factory=lambda: itertools.count(FIRM_SEQ_START))
    _amounts: Iterator[int] = field(default_factory=lambda: itertools.count(1_000_000, 1_000))
    _reads: Iterator[int] = field(default_factory=itertools.count)
    _pairs: Iterator[tuple[int, int]] = field(init=False)
    _acknowledged: int = 0

    def __post_init__(self) -> None:
        self._pairs = iter(itertools.product(self.world.firm_ids, self.world.product_ids))

    def __enter__(self) -> Traffic:
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout_seconds + 5)

    def since(self, moment: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.started >= moment]

    def wait_until(
        self, condition: Callable[[list[Answer]], bool], timeout: float, what: str
    ) -> None:
        """Poll the recorded answers until ``condition`` holds; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                answers = list(self.answers)
            if condition(answers):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"traffic: {what} not within {timeout:.0f} s")
            time.sleep(0.05)

    def run_until_fresh(
        self, back_at: float, fresh: Callable[[Answer], bool], timeout: float = 35.0
    ) -> None:
        """Keep the traffic going until a fresh success answered after ``back_at``, or for
        ``timeout`` (past any breaker's longest pause), so a slow recovery is measured, not
        only found late; the drill's checks judge the time."""
        with contextlib.suppress(AssertionError):
            self.wait_until(
                lambda seen: any(a.ended >= back_at and a.ok and fresh(a) for a in seen),
                timeout,
                "a fresh answer",
            )

    def run_past(self, moment: float, answers: int = 10, timeout: float = 60.0) -> None:
        """Wait until ``answers`` requests were sent after ``moment`` (a monotonic time)."""
        self.wait_until(
            lambda seen: sum(1 for a in seen if a.started >= moment) >= answers,
            timeout,
            f"{answers} answers to requests sent after t={moment:.1f}",
        )

    # The workers

    def _work(self, number: int) -> None:
        world = self.world
        client = httpx.Client(base_url=world.gateway, timeout=self.timeout_seconds)
        pending: _Write | None = None
        mix = itertools.islice(itertools.cycle(MIX), number, None)  # workers out of step
        try:
            while not self._stop.is_set():
                kind = next(mix)
                if kind in WRITES:
                    pending = self._write(client, pending or self._new_write(kind))
                else:
                    self._read(client, kind)
                self._stop.wait(self.pause_seconds)
        finally:
            client.close()

    def _new_write(self, kind: str) -> _Write | None:
        key = f"drill-{uuid.uuid4()}"
        if kind == "create_firm":
            body = data.firm(seq=next(self._firm_seq))
            return _Write(kind, key, body["credit_code"], body)
        with self._lock:
            pair = next(self._pairs, None)
        if pair is None:  # every firm of the pool applied to every product
            return None
        firm_id, product_id = pair
        return _Write(kind, key, f"{firm_id}:{product_id}", data.application(firm_id, product_id))

    def _write(self, client: httpx.Client, write: _Write | None) -> _Write | None:
        """Send it; what to send at the next write turn (a retry, a repeat, or nothing)."""
        if write is None:
            return None
        path = "/v1/firms" if write.kind == "create_firm" else "/v1/applications"
        answer = self._send(
            client,
            write.kind,
            "POST",
            path,
            json=write.body,
            headers={
                "Authorization": f"Bearer {self.world.portal_key}",
                "Idempotency-Key": write.key,
            },
            key=write.key,
            target=write.target,
        )
        final = answer.status is not None and answer.status < 500
        in_flight = answer.status == 409 and b"idempotency_in_flight" in answer.body
        if not final or in_flight:
            return write  # the same key and body again, next turn
        if answer.ok and not write.repeat:
            with self._lock:
                self._acknowledged += 1
                repeat = self._acknowledged % REPEAT_EVERY == 0
            if repeat:
                return _Write(write.kind, write.key, write.target, write.body, repeat=True)
        return None

    def _read(self, client: httpx.Client, kind: str) -> None:
        world = self.world
        portal = {"Authorization": f"Bearer {world.portal_key}"}
        firm_id = world.firm_ids[next(self._reads) % len(world.firm_ids)]
        if kind == "get_firm":
            self._send(client, kind, "GET", f"/v1/firms/{firm_id}", headers=portal)
        elif kind == "matches":
            # A new amount each time: past the gateway's cache, so each one asks matching.
            params = {"amount_yuan": next(self._amounts)}
            path = f"/v1/firms/{firm_id}/matches"
            self._send(client, kind, "GET", path, headers=portal, params=params)
        else:
            official = {"Authorization": f"Bearer {world.official_key}"}
            self._send(client, kind, "GET", "/v1/stats/overview", headers=official)

    def _send(
        self,
        client: httpx.Client,
        kind: str,
        method: str,
        path: str,
        *,
        key: str | None = None,
        target: str | None = None,
        **kwargs: Any,
    ) -> Answer:
        started = time.monotonic()
        try:
            response = client.request(method, path, **kwargs)
            answer = Answer(
                kind,
                started,
                time.monotonic(),
                response.status_code,
                response.headers.get("Retry-After"),
                response.content,
                key,
                target,
                stale=response.headers.get("X-Finmatch-Stale"),
            )
        except httpx.HTTPError as exc:
            answer = Answer(
                kind, started, time.monotonic(), None, key=key, target=target, error=repr(exc)
            )
        with self._lock:
            self.answers.append(answer)
        return answer
