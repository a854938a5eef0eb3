"""The NDJSON import pipeline shared by the bulk imports (firms, past decisions).

Lines are read as they stream in and cut into batches; batch k+1 is validated (Python CPU, in
the thread pool) while batch k is written (database time). An import whose ``prepare`` pickles
may be given the validation pool (services/registry/validation_pool.py): then up to one batch
per worker is validated at once, on as many cores, while batch k is written. Either way batches
are written strictly in order, one transaction at a time. Each import brings its own
``prepare`` (lines → PreparedBatch, no database) and ``write`` (one transaction per batch,
services/registry/bulk.py). The answer is NDJSON: one result per non-blank input line, then a
summary line.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import Query
from fastapi.concurrency import run_in_threadpool

from services.registry.bulk import (
    IMPORT_PHASE_SECONDS,
    MAX_LINE_BYTES,
    BatchOutcome,
    NumberedLine,
    PreparedBatch,
    timed_phase,
)
from services.registry.validation_pool import ValidationPool
from shared.errors import PayloadTooLarge, Unprocessable

Prepare = Callable[[int, Sequence[NumberedLine]], PreparedBatch]
Write = Callable[[PreparedBatch], BatchOutcome]

# The OpenAPI of an NDJSON import's body (FastAPI cannot infer a body read as a stream).
# The query of every NDJSON import: the client's id for resuming, and the lines per batch.
ImportId = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
BatchSize = Annotated[int | None, Query(ge=1, le=20_000)]

NDJSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
}


@dataclass
class _Validating:
    """A batch being validated: in the thread pool, or in a worker of ``executor``."""

    batch_no: int
    lines: Sequence[NumberedLine]
    thread: asyncio.Future[PreparedBatch] | None = None
    executor: ProcessPoolExecutor | None = None
    process: Future[tuple[PreparedBatch, float]] | None = None


class NdjsonImport:
    """Reads lines and pipelines their batches through ``prepare`` and ``write``.

    Line numbers are physical (blank lines count, so they match the client's file; a CSV body
    whose header was read starts at ``first_line`` 2). ``statuses`` are the result statuses
    of written lines counted in the summary (besides ``invalid`` and ``not_written``); those in
    ``unlisted`` are counted but not answered line by line (an upload of 100,000 lines answers
    with its errors only). ``id_name`` names the client's id in the summary line.

    ``pool``: the validation pool, for an import whose ``prepare`` pickles (a module-level
    function, or a partial of one with plain arguments); None validates in the thread pool.
    """

    def __init__(
        self,
        prepare: Prepare,
        write: Write,
        *,
        import_id: str,
        statuses: tuple[str, ...],
        item: str,
        batch_size: int,
        max_lines: int,
        first_line: int = 1,
        unlisted: tuple[str, ...] = (),
        id_name: str = "import_id",
        pool: ValidationPool | None = None,
    ) -> None:
        self.prepare = prepare
        self.write = write
        self.import_id = import_id
        self.item = item
        self.batch_size = batch_size
        self.max_lines = max_lines
        self.results: list[bytes] = []
        self.summary = {"lines": 0} | dict.fromkeys(statuses, 0) | {"invalid": 0, "not_written": 0}
        self.batches = {"committed": 0, "rejected": 0, "already_committed": 0, "conflict": 0}
        self.pending: list[NumberedLine] = []
        self.batch_no = 0
        self.line_no = first_line - 1
        self.unlisted = frozenset(unlisted)
        self.id_name = id_name
        self.writing: asyncio.Future[BatchOutcome] | None = None
        self.pool = pool
        # Batches validating, oldest first: as many as the pool has workers (one in threads).
        self.validating: deque[_Validating] = deque()

    async def consume(self, stream: AsyncIterator[bytes]) -> None:
        buffer = b""
        async for chunk in stream:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            # An over-long line is cut one byte past the limit, so decode_line refuses it as an
            # invalid line however the body was chunked, and the buffer stays bounded.
            buffer = buffer[: MAX_LINE_BYTES + 1]
            for raw in complete:
                await self._line(raw)
        if buffer:
            await self._line(buffer)
        if self.summary["lines"] == 0:
            # An empty file is a client's mistake (a wrong path, a failed export), not an
            # import of nothing: say so rather than answer 200 with an empty summary.
            raise Unprocessable(
                f"the body holds no line: send one {self.item} per line", field="body"
            )
        if self.pending:
            await self._submit()

    async def _line(self, raw: bytes) -> None:
        self.line_no += 1
        if not raw.strip():
            return
        self.summary["lines"] += 1
        if self.summary["lines"] > self.max_lines:
            raise PayloadTooLarge(
                f"more than {self.max_lines} lines; the batches before line {self.line_no} "
                "were imported — split the file and resend the rest",
                field="body",
            )
        self.pending.append((self.line_no, raw[: MAX_LINE_BYTES + 1]))
        if len(self.pending) >= self.batch_size:
            await self._submit()

    async def _submit(self) -> None:
        batch, self.pending = self.pending, []
        self.validating.append(self._validate(self.batch_no, batch))
        self.batch_no += 1
        while len(self.validating) >= self._depth():
            await self._advance()

    def _depth(self) -> int:
        return self.pool.processes if self.pool is not None else 1

    def _validate(self, batch_no: int, lines: Sequence[NumberedLine]) -> _Validating:
        if self.pool is not None:
            started = self.pool.submit(self.prepare, batch_no, lines)
            if started is not None:
                executor, future = started
                return _Validating(batch_no, lines, executor=executor, process=future)
            self.pool = None  # broken or shut down: this import goes on in threads
        thread = asyncio.ensure_future(run_in_threadpool(self._prepare, batch_no, lines))
        return _Validating(batch_no, lines, thread=thread)

    async def _validated(self, validating: _Validating) -> PreparedBatch:
        if validating.thread is not None:
            return await validating.thread
        assert validating.process is not None
        assert validating.executor is not None
        try:
            prepared, seconds = await asyncio.wrap_future(validating.process)
        except BrokenProcessPool as exc:  # a worker died (killed, out of memory)
            if self.pool is not None:
                self.pool.broken(validating.executor, exc)
            self.pool = None
            return await run_in_threadpool(self._prepare, validating.batch_no, validating.lines)
        IMPORT_PHASE_SECONDS.labels(self.item, "validate").observe(seconds)
        return prepared

    async def _advance(self) -> None:
        """Write the oldest batch once validated, after the write before it."""
        prepared = await self._validated(self.validating.popleft())
        await self._collect()
        self.writing = asyncio.ensure_future(run_in_threadpool(self._write, prepared))

    def _prepare(self, batch_no: int, lines: Sequence[NumberedLine]) -> PreparedBatch:
        with timed_phase(self.item, "validate"):
            return self.prepare(batch_no, lines)

    def _write(self, prepared: PreparedBatch) -> BatchOutcome:
        with timed_phase(self.item, "write"):
            return self.write(prepared)

    async def _collect(self) -> None:
        if self.writing is None:
            return
        with timed_phase(self.item, "wait"):
            outcome = await self.writing
        self.writing = None
        self.batches[outcome.status] += 1
        for result in outcome.results:
            status = result["status"]
            if status in self.summary:
                self.summary[status] += 1
            elif status != "already_committed":
                self.summary["not_written"] += 1
            if status not in self.unlisted:
                self.results.append(orjson.dumps(result))

    async def finish(self) -> None:
        """Write the batches still validating and wait for the last write, so that the answer
        tells what was committed (every batch cut before an error, as without a pool)."""
        try:
            while self.validating:
                await self._advance()
            await self._collect()
        finally:
            for left in self.validating:  # after a failed write: not validated for nothing
                if left.thread is not None:
                    left.thread.cancel()
                if left.process is not None:
                    left.process.cancel()
            self.validating.clear()

    def body(self, **extra: object) -> bytes:
        tail = {
            "summary": self.summary,
            "batches": self.batches,
            self.id_name: self.import_id,
            "batch_size": self.batch_size,
            **extra,
        }
        return b"\n".join([*self.results, orjson.dumps(tail)]) + b"\n"
