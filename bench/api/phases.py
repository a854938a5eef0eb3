"""One timed phase, run by the Python load generator or by wrk, and what it measured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.api.common import BENCH_DATABASE, REPO_ROOT, WRK_SCRIPT, BenchFailure
from bench.api.cpu import cpu_seconds, cpu_ticks


@dataclass
class Phase:
    name: str
    latency_ms: np.ndarray[Any, Any]
    statuses: list[int]
    crcs: list[int]
    sizes: list[int]
    seconds: float
    cpu: dict[str, list[float]]  # (user, system) seconds of each process group
    requested: int
    # wrk reports percentiles, not each request's latency; its crcs are unknown (None) and
    # its sizes are the answers' sizes in no particular order.
    percentiles: dict[float, float] | None = None
    concurrency: int = 1
    # Open loop only: the arrival rate asked for, each request's lag (due time to its sending)
    # and its latency from sending (what a closed-loop client would have measured).
    rate: float | None = None
    lag_ms: np.ndarray[Any, Any] | None = None
    sent_latency_ms: np.ndarray[Any, Any] | None = None
    # Open loop: 200 answers not found in Redis (the gateway's cache fell back to its memory).
    unstored: int = 0

    @property
    def requests(self) -> int:
        return len(self.statuses)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        if self.percentiles is not None:
            return self.percentiles[q]
        return float(np.percentile(self.latency_ms, q))

    @property
    def sent_rate(self) -> float:
        """Open loop: requests sent per second, first sending to last (the rate achieved)."""
        assert self.rate is not None
        assert self.lag_ms is not None
        sent = np.arange(self.requests) / self.rate + self.lag_ms / 1000
        span = float(sent.max() - sent.min())
        return (self.requests - 1) / span if span > 0 else float("nan")

    @property
    def failed(self) -> int:
        """Requests not answered 200 (an open loop past capacity times out)."""
        return sum(1 for s in self.statuses if s != 200)

    def late(self, ms: float) -> int:
        """Open loop: requests that left more than ``ms`` after their due time."""
        assert self.lag_ms is not None
        return int(np.count_nonzero(self.lag_ms > ms))

    def cpu_ms_per_request(self, name: str) -> float:
        return sum(self.cpu[name]) * 1000 / self.requests

    def system_share(self, name: str) -> float:
        user, system = self.cpu[name]
        return system / (user + system) if user + system else 0.0


@dataclass
class Runner:
    base_url: str
    headers: dict[str, str]
    processes: Callable[[], dict[str, list[int]]]
    concurrency: int
    max_seconds: float
    workdir: Path
    client: str = "raw"
    runs: int = field(default=0)

    def run(
        self,
        name: str,
        paths: Sequence[str],
        requests: int,
        warmup_paths: Sequence[str],
        warmup: int,
        concurrency: int | None = None,
    ) -> Phase:
        self.runs += 1
        if self.client == "wrk":
            if warmup:
                self.wrk(warmup_paths, warmup, concurrency or self.concurrency)
            return self.timed_wrk(name, paths, requests, concurrency or self.concurrency)
        out = self.loadgen(
            {
                "concurrency": concurrency or self.concurrency,
                "max_seconds": self.max_seconds,
                "paths": list(paths),
                "requests": requests,
                "warmup_paths": list(warmup_paths),
                "warmup": warmup,
            }
        )
        results = out["results"]
        if not results:
            raise BenchFailure(f"{name}: no request completed")
        latency = np.array([r[0] for r in results], dtype=np.float64) / 1e6
        phase = Phase(
            name,
            latency,
            [r[1] for r in results],
            [r[2] for r in results],
            [r[3] for r in results],
            out["seconds"],
            out["cpu"],
            requests,
        )
        print(
            f"{name}: {phase.requests:,} requests in {phase.seconds:.2f} s, "
            f"{phase.rps:,.0f}/s, p50 {phase.pct(50):.2f} ms, p99 {phase.pct(99):.2f} ms "
            f"(PostgreSQL processes counted: {out['processes']['PostgreSQL']})",
            flush=True,
        )
        return phase

    def loadgen(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Run ``python -m bench.api --loadgen`` on ``spec`` (plus the target and the processes
        to watch) in a fresh process; what it wrote back."""
        spec_file = self.workdir / f"spec-{self.runs}.json"
        out_file = self.workdir / f"out-{self.runs}.json"
        spec = {
            "base_url": self.base_url,
            "headers": self.headers,
            "pids": self.processes(),
            "database": BENCH_DATABASE,
            # wrk has no open loop: that phase goes through the lean Python client.
            "client": "raw" if self.client == "wrk" else self.client,
            **spec,
        }
        spec_file.write_bytes(orjson.dumps(spec))
        env = os.environ | {
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            )
        }
        command = [sys.executable, "-m", "bench.api", "--loadgen", str(spec_file), str(out_file)]
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            timeout=self.max_seconds + spec.get("seconds", 0.0) + 300,
        )
        if done.returncode != 0:
            raise BenchFailure(f"load generator failed:\n{done.stderr.decode()[-4000:]}")
        out: dict[str, Any] = orjson.loads(out_file.read_bytes())
        return out

    def run_open(
        self,
        name: str,
        paths: Sequence[str],
        rate: float,
        warmup_paths: Sequence[str],
        connections: int,
    ) -> Phase:
        """An open-loop phase (bench.api.openloop): each path once, due every 1/rate s, after
        ``warmup_paths`` opened ``connections`` connections. Latencies from the due time."""
        self.runs += 1
        out = self.loadgen(
            {
                "rate": rate,
                "seconds": len(paths) / rate,
                "concurrency": connections,
                "paths": list(paths),
                "warmup_paths": list(warmup_paths),
            }
        )
        rows = np.array(out["results"], dtype=np.int64).reshape(-1, 6)
        phase = Phase(
            name,
            rows[:, 0] / 1e6,
            [int(s) for s in rows[:, 1]],
            [int(c) for c in rows[:, 2]],
            [int(n) for n in rows[:, 3]],
            out["seconds"],
            out["cpu"],
            len(paths),
            rate=rate,
            lag_ms=rows[:, 4] / 1e6,
            sent_latency_ms=rows[:, 5] / 1e6,
        )
        assert phase.lag_ms is not None
        print(
            f"{name}: {phase.requests:,} requests due at {rate:g}/s, sent at "
            f"{phase.sent_rate:,.1f}/s, p50 {phase.pct(50):.2f} ms, p99 {phase.pct(99):.2f} ms, "
            f"max {phase.pct(100):.2f} ms from the due time; lag p99 "
            f"{np.percentile(phase.lag_ms, 99):.2f} ms (PostgreSQL processes counted: "
            f"{out['processes']['PostgreSQL']})",
            flush=True,
        )
        return phase

    def wrk(
        self, paths: Sequence[str], requests: int, concurrency: int
    ) -> tuple[dict[str, Any], float, Any]:
        """Run wrk until ``requests`` answers came back: (its report, seconds, its rusage)."""
        tag = f"wrk-{self.runs}-{len(paths)}-{requests}"
        paths_file, out_file = self.workdir / f"{tag}.paths", self.workdir / f"{tag}.json"
        done = Path(f"{out_file}.done")
        # wrk asks the script for one request per thread before it connects and never sends
        # it: the first line is spent there, so it is a spare copy of the first path.
        paths_file.write_text("\n".join([paths[0], *paths]) + "\n")
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{self.max_seconds + 60:.0f}s"]
        for name, value in self.headers.items():
            command += ["-H", f"{name}: {value}"]
        command += ["-s", str(WRK_SCRIPT), self.base_url, "--"]
        command += [str(paths_file), str(requests), str(out_file)]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = started + self.max_seconds
        while not done.exists() and time.perf_counter() < deadline and process.poll() is None:
            time.sleep(0.002)
        seconds = time.perf_counter() - started
        process.send_signal(signal.SIGINT)
        _pid, status, usage = os.wait4(process.pid, 0)
        if not out_file.exists():
            err = process.stderr.read().decode() if process.stderr else ""
            raise BenchFailure(f"wrk failed (status {status}): {err[-2000:]}")
        return orjson.loads(out_file.read_bytes()), seconds, usage

    def timed_wrk(self, name: str, paths: Sequence[str], requests: int, concurrency: int) -> Phase:
        # At most concurrency - 1 requests are in flight past the limit: stop that much early,
        # so that a list of distinct firms never wraps around to one already answered.
        limit = requests if len(paths) < requests else max(1, requests - concurrency + 1)
        groups = self.processes()
        before = cpu_ticks(groups, BENCH_DATABASE)
        report, seconds, usage = self.wrk(paths, limit, concurrency)
        after = cpu_ticks(groups, BENCH_DATABASE)
        cpu = {k: list(v) for k, v in cpu_seconds(before, after).items()}
        cpu["load generator"] = [usage.ru_utime, usage.ru_stime]
        n = int(report["requests"])
        statuses = [int(s) for s, c in report["statuses"].items() for _ in range(c)]
        statuses += [0] * (n - len(statuses) + int(report["errors"]))
        latency = {float(q): v / 1000 for q, v in report["latency_us"].items() if q != "max"}
        latency[100.0] = report["latency_us"]["max"] / 1000
        phase = Phase(
            name,
            np.array([]),
            statuses,
            [],
            [int(size) for size, c in report["sizes"].items() for _ in range(c)],
            seconds,
            cpu,
            limit,
            percentiles=latency,
            concurrency=concurrency,
        )
        print(
            f"{name}: {phase.requests:,} requests in {phase.seconds:.2f} s, "
            f"{phase.rps:,.0f}/s, p50 {phase.pct(50):.2f} ms, p99 {phase.pct(99):.2f} ms (wrk)",
            flush=True,
        )
        return phase
