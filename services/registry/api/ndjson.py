"""The NDJSON import pipeline shared by the bulk imports (firms, past decisions).

Lines are read as they stream in and cut into batches; batch k+1 is validated (Python CPU, in
the thread pool) while batch k is written (database time). Each import brings its own
``prepare`` (lines → PreparedBatch, no database) and ``write`` (one transaction per batch,
services/registry/bulk.py). The answer is NDJSON: one result per non-blank input line, then a
summary line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated

import orjson
from fastapi import Query
from fastapi.concurrency import run_in_threadpool

from services.registry.bulk import (
    MAX_LINE_BYTES,
    BatchOutcome,
    NumberedLine,
    PreparedBatch,
    timed_phase,
)
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


class NdjsonImport:
    """Reads lines and pipelines their batches through ``prepare`` and ``write``.

    Line numbers are physical (blank lines count, so they match the client's file; a CSV body
    whose header was read starts at ``first_line`` 2). ``statuses`` are the result statuses
    of written lines counted in the summary (besides ``invalid`` and ``not_written``); those in
    ``unlisted`` are counted but not answered line by line (an upload of 100,000 lines answers
    with its errors only). ``id_name`` names the client's id in the summary line.
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
        prepared = await run_in_threadpool(self._prepare, self.batch_no, batch)
        self.batch_no += 1
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
        """Wait for the batch in flight, so that the answer tells what was committed."""
        await self._collect()

    def body(self, **extra: object) -> bytes:
        tail = {
            "summary": self.summary,
            "batches": self.batches,
            self.id_name: self.import_id,
            "batch_size": self.batch_size,
            **extra,
        }
        return b"\n".join([*self.results, orjson.dumps(tail)]) + b"\n"
