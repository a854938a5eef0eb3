"""py-spy on the services, and its raw stacks summed up by module and function."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.api.common import BenchFailure


@contextmanager
def py_spy(pids: dict[str, int], outdir: Path) -> Iterator[dict[str, Path]]:
    """py-spy record on each process for the duration of the block (raw collapsed stacks)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    binary = shutil.which("py-spy", path=search)
    if binary is None:
        raise BenchFailure("--profile needs py-spy: .venv/bin/pip install py-spy")
    outdir.mkdir(parents=True, exist_ok=True)
    files = {name: outdir / f"{name}.raw" for name in pids}
    spies = []
    for name, pid in pids.items():
        command = [
            binary, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
            "--nonblocking", "--threads", "-o", str(files[name]),
        ]  # fmt: skip
        with (outdir / f"{name}.py-spy.log").open("wb") as log:
            spies.append(subprocess.Popen(command, stdout=log, stderr=log))
    time.sleep(1.5)  # attached
    try:
        yield files
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()


# Leaf frames where py-spy caught a thread waiting rather than working (it counts some waits
# in system calls as active): shown apart, not in the breakdown.
WAITING = (
    "EpollSelector.select",
    "Condition.wait",
    "Event.wait",
    "Thread.join",
    "Connection.wait (psycopg",  # waiting for PostgreSQL's answer
)


def frame_name(frame: str) -> str:
    """``func (path:line)`` without the line: one name per function."""
    return frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") and ":" in frame else frame


def frame_package(frame: str) -> str:
    """Where a frame's code lives: a library or stdlib module (first path component), or the
    project module (services.gateway.api.matches)."""
    path = frame.rsplit(" (", 1)[-1].rstrip(")").rsplit(":", 1)[0]
    if path.startswith("<frozen "):
        return path.removeprefix("<frozen ").rstrip(">").split(".", 1)[0]
    if path.startswith(("services/", "shared/", "bench/")):
        return path.removesuffix(".py").replace("/", ".")
    return path.split("/", 1)[0].removesuffix(".py")


def summarize_profile(name: str, raw: Path, top: int = 12) -> list[str]:
    """Self time by package or module, and the project's functions by inclusive time."""
    if not raw.exists() or raw.stat().st_size == 0:
        return [f"{name}: no samples (could py-spy attach?)"]
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = waiting = socket_calls = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if " (" in f]  # the first item names the thread
        if not frames:
            continue
        if frames[-1].startswith(WAITING):
            waiting += count
            continue
        if "(asyncio/selector_events.py:" in frames[-1]:
            # send/recv on a socket: the system call, and the time the process waits for a CPU
            # after waking the peer on a busy machine (py-spy cannot tell them apart)
            socket_calls += count
            continue
        total += count
        self_time[frame_package(frames[-1])] += count
        for function in {frame_name(f) for f in frames}:
            inclusive[function] += count
    lines = [
        f"{name}: {total:,} samples in Python and native code at 250 Hz ({total / 250:.1f} s); "
        f"left out: {socket_calls:,} in socket send/recv calls, {waiting:,} waiting (select, "
        "thread pool, PostgreSQL)"
    ]
    if not total:
        return lines
    lines.append("  self time by package or module")
    lines += [f"    {n / total:6.1%}  {package}" for package, n in self_time.most_common(top)]
    lines.append("  inclusive time of the project's functions")
    project = [
        (function, n)
        for function, n in inclusive.most_common()
        if "(services/" in function or "(shared/" in function
    ]
    lines += [f"    {n / total:6.1%}  {function}" for function, n in project[:top]]
    return lines
