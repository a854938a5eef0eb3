"""The soak benchmark, a few seconds of it on SQLite with in-process caches, so it cannot rot.

Timings are not checked (the machine may be busy): the report's shape is, and the count-back
of every acknowledged write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVICES = {"gateway", "matching", "registry"}
WRITES = {"firms created", "firms updated", "applications", "decisions"}


def test_a_short_soak_reports_every_interval_and_counts_back_every_write(tmp_path: Path) -> None:
    report_file = tmp_path / "soak.json"
    command = [
        sys.executable, "-m", "bench.soak", "--backend", "sqlite",
        "--minutes", "0.1", "--interval-seconds", "2",
        "--ramp-seconds", "1", "--ramp-max", "4", "--load", "0.3",
        "--firms", "60", "--applications", "60", "--json", str(report_file),
    ]  # fmt: skip
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    }
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for heading in ("ramp:", "soak:", "final table", "targets", "count-back", "load generator:"):
        assert heading in done.stdout

    report = json.loads(report_file.read_text())
    assert report["capacity"] > 0
    assert [step["concurrency"] for step in report["ramp"]][:1] == [2]
    assert report["rate"] == report["capacity"] * 0.3
    intervals = report["intervals"]
    assert [row["interval"] for row in intervals] == [1, 2, 3]
    for row in intervals:
        assert row["sent"] >= row["ok"] >= 0
        assert set(row["rss_mb"]) == SERVICES
        assert all(mb > 0 for mb in row["rss_mb"].values())
        assert set(row["cpu_percent"]) == SERVICES | {"load generator"}
    assert sum(row["sent"] for row in intervals) == report["requests"] > 0
    names = [target["name"] for target in report["targets"]]
    assert names[0] == "errors other than 429"
    assert names[1].startswith("RSS growth")
    assert names[2].startswith("p99 flat")
    assert report["targets"][2]["met"] is None  # 3 intervals: too short to judge

    countback = report["countback"]
    assert set(countback) == WRITES
    for kind, tally in countback.items():
        assert tally["found_once"] == tally["acknowledged"], (kind, tally["problems"])
        assert tally["problems"] == []
    # Both the ramp and the soak write: there is something to count back.
    assert countback["firms created"]["acknowledged"] > 0
    assert countback["applications"]["acknowledged"] > 0
    assert report["generator"]["cpu_seconds"] > 0
    assert isinstance(report["problems"], dict)  # the errors in detail (none expected, not checked)
