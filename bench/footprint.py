"""What each service's process costs before it serves anything: import time, memory, modules.

Each run is a fresh interpreter that imports the service and builds its app (no lifespan: no
database, Redis or model is touched). It prints the median over the runs, so a noisy machine
moves it less, and whether the process loaded scikit-learn or another service's modules.

    python -m bench.footprint [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

SERVICES = ("gateway", "registry", "matching")

_PROBE = """
import json, resource, sys, time
started = time.perf_counter()
from services.{service}.main import create_app
create_app()
seconds = time.perf_counter() - started
others = [m for m in sys.modules if m.startswith("services.") and m.split(".")[1] != "{service}"]
print(json.dumps({{
    "seconds": seconds,
    "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "modules": len(sys.modules),
    "sklearn": "sklearn" in sys.modules,
    "other_service_modules": len(others),
}}))
"""


def measure(service: str) -> dict[str, float | int | bool]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(service=service)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures: dict[str, float | int | bool] = json.loads(done.stdout.splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    header = f"{'service':<10}{'import+app (median)':>22}{'max RSS':>12}{'modules':>10}"
    print(f"{header}  sklearn  other services")
    for service in SERVICES:
        runs = [measure(service) for _ in range(args.runs)]
        seconds = statistics.median(float(r["seconds"]) for r in runs)
        rss = statistics.median(float(r["rss_mib"]) for r in runs)
        last = runs[-1]
        print(
            f"{service:<10}{seconds:>20.2f} s{rss:>8.0f} MiB{last['modules']:>10}"
            f"  {'yes' if last['sklearn'] else 'no':<7}  {last['other_service_modules']}"
        )


if __name__ == "__main__":
    main()
