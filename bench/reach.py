"""Benchmark the product reach preview (services.matching.policy.reach) at city scale.

The target (issue 13): ≤ 500 ms for one preview over 100,000 firms that consented to matching
and stated a need, with a learned model. The baseline in the same run is one vectorised
eligibility pass over the same firms (the floor the preview builds on: it makes one per rule it
sets, plus one model call over the eligible firms), so the ratio says what the rest costs.

    python -m bench.reach [--firms 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.world import (
    AS_OF,
    catalogue_products,
    export_rows,
    firm_features,
    history,
    learned_model,
    machine_info,
    print_machine,
    print_targets,
)
from services.matching.eligibility import evaluate_pairs
from services.matching.policy import reach
from services.matching.tables import FirmTable, ProductTable
from services.registry.seed.population import generate_firms
from shared.criteria import CRITERIA, is_set

TARGET_MS = 500.0
WORLD_FIRMS, WORLD_APPLICATIONS, WORLD_SEED = 6_000, 15_000, 3


def timed(run: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    print_machine(machine_info())
    print(f"\ntraining a model on {WORLD_APPLICATIONS:,} synthetic applications …", flush=True)
    world = list(generate_firms(WORLD_FIRMS, seed=WORLD_SEED))
    model, _ = learned_model(export_rows(world, history(world, WORLD_APPLICATIONS, WORLD_SEED)))
    print(f"building {args.firms:,} firms with a need …", flush=True)
    drawn = [f for f in generate_firms(args.firms * 2, seed=11) if f.get("need_amount_yuan")]
    firms = FirmTable.from_firms([firm_features(f) for f in drawn[: args.firms]], AS_OF)
    print(f"  {firms.m:,} firms")

    # The products that set the most rules: the preview's worst case (one pass per rule).
    def rules(p: Any) -> int:
        return sum(is_set(c, getattr(p, c.product_field)) for c in CRITERIA)

    products = sorted(catalogue_products(), key=lambda p: -rules(p))[:3]
    index = np.arange(firms.m, dtype=np.int64)
    zeros = np.zeros(firms.m, dtype=np.int64)
    print(
        f"\n{'product':<28} {'rules':>5} {'eligible':>9} {'floor ms':>9} "
        f"{'reach p50':>10} {'reach max':>10} {'ratio':>6}"
    )
    worst = 0.0
    for product in products:
        table = ProductTable.from_products([product])
        floor = timed(
            lambda t=table: evaluate_pairs(firms, index, t, zeros),  # type: ignore[misc]
            args.repeat,
        )
        result = reach(firms, product, model)  # warm
        times = timed(lambda p=product: reach(firms, p, model), args.repeat)  # type: ignore[misc]
        p50, top = statistics.median(times), max(times)
        worst = max(worst, top)
        print(
            f"{product.name[:26]:<28} {rules(product):>5} {result.eligible!s:>9} "
            f"{statistics.median(floor):>9.1f} {p50:>10.1f} {top:>10.1f} "
            f"{p50 / statistics.median(floor):>6.1f}"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {rss:,.0f} MiB (the firm table, the model and the world it trained on)")
    print_targets(
        [
            (
                f"reach preview at {firms.m:,} firms ≤ {TARGET_MS:.0f} ms",
                f"{worst:.0f} ms max",
                worst <= TARGET_MS,
            )
        ]
    )
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
