"""cProfile in each service, every thread, on CPU time, for a window the bench opens and closes.

A service started with ``FINMATCH_BENCH_CPROFILE=<file>`` profiles its main thread (the event
loop) from the app factory on, and every thread started after it (the thread pool's workers)
from its first call. The timer is the thread's own CPU time (``time.thread_time``), so time a
thread spends waiting (for a socket, a lock, a CPU taken by other work on the machine) is not
counted: the figures hold on a loaded machine. The profiler slows every call down, so compare
shares, not absolute times, with the bench's CPU columns.

SIGUSR1 marks the window's start (a snapshot of every thread's counts), SIGUSR2 its end: the
counts since the start, all threads summed, go to the file in pstats format
(``python -m pstats FILE``, or :func:`summarize`).
"""

from __future__ import annotations

import cProfile
import io
import marshal
import os
import pstats
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

VARIABLE = "FINMATCH_BENCH_CPROFILE"
Stats = dict[tuple[str, int, str], tuple[Any, ...]]

_profilers: list[cProfile.Profile] = []
_start: list[Stats] = []


def _new_profiler() -> cProfile.Profile:
    profiler = cProfile.Profile(time.thread_time)
    _profilers.append(profiler)
    profiler.enable()
    return profiler


def _thread_hook(frame: FrameType, event: str, arg: object) -> None:
    # Called on the thread's first profiled event: from now on cProfile's own hook runs there.
    _new_profiler()


def _snapshot(profiler: cProfile.Profile) -> Stats:
    profiler.snapshot_stats()  # reads the counts so far; the profiler stays enabled
    return dict(profiler.stats)  # type: ignore[attr-defined]


def _minus(end: Stats, start: Stats) -> Stats:
    """Counts of ``end`` less those of ``start`` (same thread, later)."""
    out: Stats = {}
    for func, (cc, nc, tt, ct, callers) in end.items():
        before = start.get(func)
        if before is None:
            out[func] = (cc, nc, tt, ct, dict(callers))
            continue
        bcc, bnc, btt, bct, bcallers = before
        if nc == bnc:
            continue
        diff_callers = {}
        for caller, counts in callers.items():
            prior = bcallers.get(caller)
            if prior is not None:
                counts = tuple(a - b for a, b in zip(counts, prior, strict=True))
            diff = counts
            if diff[0]:
                diff_callers[caller] = diff
        out[func] = (cc - bcc, nc - bnc, tt - btt, ct - bct, diff_callers)
    return out


def _mark_start(signum: int, frame: FrameType | None) -> None:
    _start[:] = [_snapshot(p) for p in list(_profilers)]


def _write_window(path: Path) -> None:
    starts = list(_start)
    combined = pstats.Stats(stream=io.StringIO())
    for index, profiler in enumerate(list(_profilers)):
        diff = _minus(_snapshot(profiler), starts[index] if index < len(starts) else {})
        if not diff:
            continue
        holder = pstats.Stats(stream=io.StringIO())
        holder.stats = diff  # type: ignore[attr-defined]
        holder.total_calls = sum(v[1] for v in diff.values())  # type: ignore[attr-defined]
        combined.add(holder)
    path.write_bytes(marshal.dumps(combined.stats))  # type: ignore[attr-defined]


def install_from_env() -> None:
    """Profile this process if the bench asked for it (``FINMATCH_BENCH_CPROFILE``)."""
    target = os.environ.get(VARIABLE)
    if not target:
        return
    threading.setprofile(_thread_hook)
    _new_profiler()  # the main thread: uvicorn calls the app factory there, then runs the loop
    signal.signal(signal.SIGUSR1, _mark_start)
    signal.signal(signal.SIGUSR2, lambda signum, frame: _write_window(Path(target)))


def summarize(name: str, path: Path, cpu_ms: float, requests: int, top: int = 25) -> list[str]:
    """The functions with the most own time (tottime), and the project's by inclusive time."""
    if not path.exists() or path.stat().st_size == 0:
        return [f"{name}: no profile written"]
    stats = pstats.Stats(str(path), stream=io.StringIO())
    raw: Stats = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    if total <= 0:
        return [f"{name}: empty profile"]

    def label(func: tuple[str, int, str]) -> str:
        filename, line, function = func
        for marker in ("site-packages/", "/lib/python3"):
            if marker in filename:
                filename = filename.split(marker, 1)[1]
        filename = filename.replace(str(Path(__file__).resolve().parents[2]) + "/", "")
        return f"{function} ({filename}:{line})"

    scale = cpu_ms / total if total else 0.0  # profiled seconds → real CPU ms per request
    lines = [
        f"{name}: {total:.2f} s of profiled CPU over {requests:,} requests "
        f"(unprofiled: {cpu_ms:.2f} ms per request); each row's ms per request is its share "
        "of that"
    ]
    lines.append("  own time (tottime)")
    by_own = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for func, (_cc, nc, tt, _ct, _callers) in by_own:
        lines.append(
            f"    {tt / total:6.1%} {tt * scale:6.3f} ms  {nc / requests:7.1f} calls/req  "
            f"{label(func)}"
        )
    lines.append("  inclusive time (cumtime) of the project's functions")
    project = [
        (func, v) for func, v in raw.items() if "/services/" in func[0] or "/shared/" in func[0]
    ]
    for func, (_cc, nc, _tt, ct, _callers) in sorted(
        project, key=lambda item: item[1][3], reverse=True
    )[:top]:
        lines.append(
            f"    {ct / total:6.1%} {ct * scale:6.3f} ms  {nc / requests:7.1f} calls/req  "
            f"{label(func)}"
        )
    return lines
