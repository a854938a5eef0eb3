"""What the soak prints: a row per interval, the targets' verdict, the count-back, the JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bench.soak.countback import Tally
from bench.soak.load import Samples
from bench.soak.monitor import GENERATOR, Reading

SERVICES = ("gateway", "matching", "registry")
MAX_ERRORS = 0  # answers other than 2xx and 429 (a 429 is the limiter doing its job)
MAX_RSS_GROWTH = 0.10  # interval 2 → the last interval, per service
MAX_P99_GROWTH = 0.20  # the last two intervals' p99 against intervals 2–3


@dataclass
class Row:
    interval: int
    sent: int
    ok: int
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]  # status → answers, everything but 2xx; "0" no answer, "-1" not sent
    rss_mb: dict[str, float]
    cpu_percent: dict[str, float]  # of one CPU: the services and the load generator
    machine_percent: float  # of all CPUs
    lag_p99_ms: float  # how late the 99th-percentile request left the load generator


@dataclass
class Target:
    name: str
    figure: str
    met: bool | None  # None: the run is too short to judge


def pct(values: list[float], q: float) -> float:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.percentile(finite, q)) if finite.size else float("nan")


def bad(status: int) -> bool:
    return not (200 <= status < 300 or status == 429)


def row_of(samples: Samples, reading: Reading, k: int, interval: float) -> Row:
    """Interval k (from 1): the requests due in it, and the reading taken at its end."""
    part = samples.window((k - 1) * interval, k * interval)
    errors = Counter(str(s) for s in part.status if not 200 <= s < 300)
    return Row(
        k,
        len(part),
        sum(200 <= s < 300 for s in part.status),
        pct(part.latency_ms, 50),
        pct(part.latency_ms, 99),
        dict(sorted(errors.items())),
        {n: reading.rss.get(n, 0) / 2**20 for n in SERVICES},
        {n: 100 * reading.cpu_share[n] for n in (*SERVICES, GENERATOR)},
        100 * reading.machine_share,
        pct(part.lag_ms, 99),
    )


def rows_of(samples: Samples, readings: list[Reading], interval: float) -> list[Row]:
    return [row_of(samples, r, k, interval) for k, r in enumerate(readings, start=1)]


def targets(samples: Samples, rows: list[Row], interval: float) -> list[Target]:
    n = len(rows)
    errors = Counter(s for s in samples.status if bad(s))
    out = [
        Target(
            "errors other than 429",
            f"{sum(errors.values())}"
            + (f" ({', '.join(f'{s}: {c}' for s, c in sorted(errors.items()))})" if errors else ""),
            sum(errors.values()) <= MAX_ERRORS,
        )
    ]
    if n >= 3:
        # A service that is gone reads 0 MB: its growth is infinite, never met.
        growth = {
            s: rows[-1].rss_mb[s] / rows[1].rss_mb[s] - 1 if rows[1].rss_mb[s] else float("inf")
            for s in SERVICES
        }
        out.append(
            Target(
                f"RSS growth < {MAX_RSS_GROWTH:.0%}, interval 2 → {n}",
                ", ".join(f"{s} {g:+.1%}" for s, g in growth.items()),
                all(g < MAX_RSS_GROWTH for g in growth.values()),
            )
        )
    else:
        out.append(Target("RSS growth", f"not judged: {n} intervals, needs 3", None))
    if n >= 5:
        base = samples.window(interval, 3 * interval).latency_ms
        last = samples.window((n - 2) * interval, n * interval).latency_ms
        p_base, p_last = pct(base, 99), pct(last, 99)
        change = p_last / p_base - 1 if p_base > 0 else float("nan")
        out.append(
            Target(
                f"p99 flat: intervals {n - 1}–{n} ≤ {1 + MAX_P99_GROWTH:.2f} × intervals 2–3",
                f"{p_last:.1f} ms vs {p_base:.1f} ms ({change:+.1%})",
                change <= MAX_P99_GROWTH,
            )
        )
    else:
        out.append(Target("p99 flat", f"not judged: {n} intervals, needs 5", None))
    return out


def print_rows(rows: list[Row], interval: float) -> None:
    unit = "min" if interval == 60 else f"{interval:g}s"
    print(
        f"\n{unit:>4} {'sent':>7} {'2xx':>7} {'p50 ms':>8} {'p99 ms':>8} {'lag p99':>8}  "
        f"{'RSS MB gw/match/reg':>20}  {'CPU % gw/match/reg/gen':>22} {'busy':>5}  errors"
    )
    for row in rows:
        print(row_line(row))


def row_line(row: Row) -> str:
    rss = "/".join(f"{row.rss_mb[s]:.0f}" for s in SERVICES)
    cpu = "/".join(f"{row.cpu_percent[s]:.0f}" for s in (*SERVICES, GENERATOR))
    errors = ", ".join(f"{s}: {c}" for s, c in row.errors.items()) or "none"
    return (
        f"{row.interval:>4} {row.sent:>7,} {row.ok:>7,} {row.p50_ms:>8.1f} {row.p99_ms:>8.1f} "
        f"{row.lag_p99_ms:>8.1f}  {rss:>20}  {cpu:>22} {row.machine_percent:>4.0f}%  {errors}"
    )


def print_targets(items: list[Target]) -> None:
    print("\ntargets")
    for target in items:
        verdict = {True: "met", False: "NOT met", None: "not judged"}[target.met]
        print(f"  {target.name:<52} {target.figure}  {verdict}")


def print_countback(tallies: dict[str, Tally], unacknowledged: dict[str, int]) -> None:
    print("\ncount-back through the API (each acknowledged 2xx write found exactly once)")
    for kind, tally in tallies.items():
        mark = "ok" if not tally.problems else "WRONG"
        print(f"  {kind:<16} {tally.found_once:>7,} of {tally.acknowledged:>7,}  {mark}")
        for problem in tally.problems[:10]:
            print(f"    {problem}")
    if unacknowledged:
        shown = ", ".join(f"{op} {n}" for op, n in sorted(unacknowledged.items()))
        print(f"  writes without a 2xx answer (may or may not have landed; not checked): {shown}")


def as_json(**parts: Any) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Row | Target):
            return plain(asdict(value))
        if isinstance(value, Tally):
            return {
                "acknowledged": value.acknowledged,
                "found_once": value.found_once,
                "problems": value.problems[:50],
            }
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, float) and not np.isfinite(value):
            return None
        return value

    return {k: plain(v) for k, v in parts.items()}
