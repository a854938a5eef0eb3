"""Sending the traffic: the closed-loop capacity ramp and the open-loop soak, and what each
request took.

Open loop: request i is due at start + i / rate whatever the earlier answers do, and its
latency runs from that due time, so a server that stalls cannot hide the queue it builds (nor
can a load generator that falls behind: how late each request left is recorded as its lag).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from httpx_aiohttp import AiohttpTransport

from bench.soak.traffic import Call, Traffic
from bench.soak.world import auth

NOT_SENT = -1  # the status recorded for a request dropped because too many were in flight
TRANSPORT_ERROR = 0  # no HTTP answer (refused, reset, timed out)
REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass
class Samples:
    """One row per request: due time (s from the phase start), latency ms, status, operation,
    lag ms (how late it left). Columns, to keep hours of requests small."""

    due: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    op: list[str] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    # The answers that count as errors, by status, operation and problem code (their detail).
    problems: Counter[str] = field(default_factory=Counter)

    def add(self, due: float, latency_ms: float, status: int, op: str, lag_ms: float) -> None:
        self.due.append(due)
        self.latency_ms.append(latency_ms)
        self.status.append(status)
        self.op.append(op)
        self.lag_ms.append(lag_ms)

    def __len__(self) -> int:
        return len(self.due)

    def window(self, start: float, end: float) -> Samples:
        """The requests due in [start, end)."""
        due = np.asarray(self.due)
        picked = np.flatnonzero((due >= start) & (due < end))
        out = Samples()
        for i in picked:
            out.add(self.due[i], self.latency_ms[i], self.status[i], self.op[i], self.lag_ms[i])
        return out


def client(base_url: str, connections: int) -> httpx.AsyncClient:
    """httpx over aiohttp's pool: far less client CPU per request than httpcore's."""
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=4
    )
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=REQUEST_TIMEOUT_SECONDS,
        limits=limits,
        transport=AiohttpTransport(limits=limits),
    )


def problem_code(response: httpx.Response) -> str:
    """The problem+json ``code`` of an error answer, or what the body was instead."""
    try:
        body = response.json()
    except ValueError:
        return f"(not JSON: {response.text[:60]!r})"
    return str(body.get("code")) if isinstance(body, dict) else "(no code)"


async def send(
    http: httpx.AsyncClient, traffic: Traffic, call: Call, due: float, start: float, out: Samples
) -> None:
    headers = auth(call.key)
    if call.method == "POST":
        headers["Idempotency-Key"] = uuid.uuid4().hex
    left = time.perf_counter()
    answer: Any = None
    try:
        response = await http.request(call.method, call.path, json=call.body, headers=headers)
        status = response.status_code
        if 200 <= status < 300 and call.method == "POST":
            answer = response.json()
        elif status >= 400 and status != 429:
            out.problems[f"{status} {call.op} {problem_code(response)}"] += 1
    except httpx.HTTPError as exc:
        status = TRANSPORT_ERROR
        out.problems[f"{status} {call.op} {type(exc).__name__}"] += 1
    done = time.perf_counter()
    traffic.settle(call, status, answer)
    out.add(due - start, (done - due) * 1000, status, call.op, (left - due) * 1000)


async def open_loop(
    http: httpx.AsyncClient,
    traffic: Traffic,
    rate: float,
    seconds: float,
    start: float,
    max_in_flight: int,
    out: Samples,
) -> None:
    """Requests due every 1/rate s from ``start`` (a perf_counter time) for ``seconds``; each
    one's row lands in ``out`` when it is answered (or dropped)."""
    in_flight: set[asyncio.Task[None]] = set()
    total = int(seconds * rate)
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        call = traffic.next_call()
        if len(in_flight) >= max_in_flight:
            traffic.settle(call, NOT_SENT, None)
            out.add(due - start, float("nan"), NOT_SENT, call.op, float("nan"))
            continue
        task = asyncio.create_task(send(http, traffic, call, due, start, out))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight)


async def closed_loop(
    http: httpx.AsyncClient, traffic: Traffic, concurrency: int, seconds: float
) -> tuple[Samples, float]:
    """``concurrency`` workers, each sending its next request when its answer came back."""
    out = Samples()
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            call = traffic.next_call()
            await send(http, traffic, call, time.perf_counter(), start, out)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out, time.perf_counter() - start
