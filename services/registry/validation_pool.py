"""Worker processes that validate NDJSON import batches on every core (the GIL keeps threads
on one).

One pool per registry process, built in the app's lifespan from
``FINMATCH_BULK_VALIDATE_PROCESSES`` (0: none, batches are validated in the thread pool).
Workers are started with "spawn", never forked from this threaded process, and each imports
the validation code once. A pool that breaks (a worker killed) is replaced for later imports;
the import that saw it break goes on in the thread pool (services/registry/api/ndjson.py).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from services.registry.bulk import NumberedLine, PreparedBatch

log = logging.getLogger("finmatch.registry.bulk")

Prepare = Callable[[int, Sequence[NumberedLine]], PreparedBatch]


def prepare_timed(
    prepare: Prepare, batch_no: int, lines: Sequence[NumberedLine]
) -> tuple[PreparedBatch, float]:
    """Run in a worker: the prepared batch, and the seconds its validation took (the
    ``validate`` phase is observed in the registry process, whose /metrics is scraped)."""
    started = time.perf_counter()
    prepared = prepare(batch_no, lines)
    return prepared, time.perf_counter() - started


# How often a worker checks that the registry process that started it is still there.
PARENT_CHECK_SECONDS = 1.0


def _exit_with_parent(parent: int) -> None:
    """Each worker's initializer: exit as soon as the registry process that started it is
    gone. A registry stopped normally shuts its pool down; one killed (SIGKILL, the OOM
    killer) cannot, and its workers, ~100 MB each, would live on as orphans. A daemon thread
    watches the parent id (a dead parent's children are handed to another process); not
    PR_SET_PDEATHSIG, which fires when the *thread* that spawned the worker ends."""
    if os.getppid() != parent:  # gone already, between the spawn and this call
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _warm() -> int:
    """Run in a new worker so that its start (the interpreter, the imports) is paid at once."""
    import services.registry.history  # noqa: F401  (the past decisions' prepare)

    return os.getpid()


class ValidationPool:
    """A lazily (re)built ProcessPoolExecutor of ``processes`` workers."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a validation pool needs at least one process")
        self.processes = processes
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False

    def executor(self) -> ProcessPoolExecutor | None:
        """The current executor, built if needed; None once the pool is shut down."""
        with self._lock:
            if self._closed:
                return None
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_exit_with_parent,
                    initargs=(os.getpid(),),
                )
            return self._executor

    def warm(self) -> list[Future[int]]:
        """Start every worker now (not on the first import): one no-op each."""
        executor = self.executor()
        if executor is None:
            return []
        return [executor.submit(_warm) for _ in range(self.processes)]

    def submit(
        self, prepare: Prepare, batch_no: int, lines: Sequence[NumberedLine]
    ) -> tuple[ProcessPoolExecutor, Future[tuple[PreparedBatch, float]]] | None:
        """The batch's validation started in a worker, or None when the pool cannot take it
        (shut down, or broken: then it is replaced for later imports)."""
        executor = self.executor()
        if executor is None:
            return None
        try:
            return executor, executor.submit(prepare_timed, prepare, batch_no, lines)
        except RuntimeError as exc:  # BrokenProcessPool, or shut down meanwhile
            self.broken(executor, exc)
            return None

    def broken(self, executor: ProcessPoolExecutor, exc: BaseException) -> None:
        """``executor`` failed: drop it (once, logged once) so that the next import builds a
        new one."""
        with self._lock:
            if self._executor is not executor:
                return  # already replaced, or shut down
            self._executor = None
        log.warning(
            "bulk validation pool broken (%s: %s): imports under way go on in threads, "
            "a new pool serves the next ones",
            type(exc).__name__,
            exc,
        )
        # Its pending futures have all failed already; other imports fall back on their own.
        executor.shutdown(wait=False)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)  # the requests are over: nothing left to cancel

    def worker_pids(self) -> list[int]:
        """The live workers' process ids (tests, diagnostics)."""
        executor = self._executor
        processes: dict[int, Any] = getattr(executor, "_processes", None) or {}
        return sorted(processes)
