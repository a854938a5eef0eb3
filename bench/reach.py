"""Benchmark the product reach preview (services.matching.policy.reach) at city scale.

The target (issues 13 and 14): ≤ 500 ms for one preview, uncached, over 100,000 and over
1,000,000 firms that consented to matching and stated a need, with a learned model, so that the
model's expected approval share is computed (the model scores every eligible firm). Each call
is timed as the matching service answers a request: the reachable population picked from the
kept columns, every rule's mask built afresh, the model called over the eligible firms.

In the same run: the floor (one eligibility pass over the same firms), the share alone
(``policy.approval_share``: every eligible firm scored, or above ``SHARE_SAMPLE_FIRMS`` a
uniform sample of them), every eligible firm scored once (what an exact share would cost), and
the same preview under the rule-only prior (no share), so the report says what the model's
share costs. Checked (exit 1 if not): a sampled share is within its stated 99.9% margin of every
eligible firm's mean; the share does not depend on the scoring chunk; and on the first firms
it is the mean of the approval probabilities ``rank_products_for_firm`` gives them one by one.

    python -m bench.reach [--firms 100000 1000000] [--repeat 5] [--candidate NAME]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.world import (
    AS_OF,
    catalogue_products,
    firm_features,
    machine_info,
    print_machine,
    print_targets,
    world_model,
)
from services.matching import policy
from services.matching.firm_columns import FirmColumns
from services.matching.model import LearnedModel, PriorModel
from services.matching.policy import Population, population, reach
from services.matching.ranking import rank_products_for_firm
from services.matching.tables import ProductTable
from services.registry.seed.population import generate_firms
from shared.criteria import CRITERIA, is_set
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import RankOptions
from shared.schemas.product import ProductFeatures

TARGET_MS = 500.0
BUILD_CHUNK = 50_000
CHECK_FIRMS = 300  # firms ranked one by one to check the share
CHECK_CHUNK = 7_919  # another scoring chunk: the share must not move
EVERYTHING = RankOptions(limit=1_000, near_miss_limit=0)


def timed(run: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        out.append((time.perf_counter() - started) * 1000)
    return out


def build_columns(sizes: Sequence[int]) -> tuple[dict[int, FirmColumns], list[FirmFeatures]]:
    """Columns of the first n synthetic firms with a need, for each n of ``sizes`` (all
    consenting, ids 1…n), built BUILD_CHUNK firms at a time; and the first CHECK_FIRMS firms
    as FirmFeatures for the check."""
    largest = max(sizes)
    drawn = (
        f for f in generate_firms(10 * largest + BUILD_CHUNK, seed=11) if f["need_amount_yuan"]
    )
    parts: list[FirmColumns] = []
    sample: list[FirmFeatures] = []
    built = 0
    while built < largest:
        chunk = [
            firm_features(f) for f in itertools.islice(drawn, min(BUILD_CHUNK, largest - built))
        ]
        if not sample:
            sample = chunk[:CHECK_FIRMS]
        parts.append(FirmColumns.from_firms(chunk, [True] * len(chunk)))
        built += len(chunk)
    out = {}
    for n in sizes:
        data = {k: np.concatenate([p.data[k] for p in parts])[:n].copy() for k in parts[0].data}
        columns = FirmColumns(np.arange(1, n + 1, dtype=np.int64), data)
        columns.date_to(AS_OF)
        out[n] = columns
    return out, sample


def rules(product: ProductFeatures) -> int:
    return sum(is_set(c, getattr(product, c.product_field)) for c in CRITERIA)


def pick_products(columns: FirmColumns) -> list[tuple[str, ProductFeatures]]:
    """The three seed products that set the most rules (the most eligibility passes) and the
    one that admits the most firms (the most scoring)."""
    catalogue = catalogue_products()
    firms = population(columns, None, reachable=True)
    table = ProductTable.from_products(catalogue)
    admitted = [int(firms.eligible(table, j).sum()) for j in range(table.n)]
    widest = catalogue[int(np.argmax(admitted))]
    most_rules = sorted(catalogue, key=lambda p: -rules(p))[:3]
    return [("most rules", p) for p in most_rules if p.id != widest.id] + [("widest", widest)]


def check_share(
    columns: FirmColumns, sample: list[FirmFeatures], product: ProductFeatures, model: LearnedModel
) -> list[str]:
    """What is wrong with the share, if anything: it must not depend on the scoring chunk, and
    over the sample it must be the mean of ranking's per-firm probabilities."""
    problems = []
    firms = population(columns, None, reachable=True)
    share = reach(firms, product, model).expected_approval_share
    kept = policy.SCORE_CHUNK_FIRMS
    policy.SCORE_CHUNK_FIRMS = CHECK_CHUNK
    try:
        other = reach(population(columns, None, reachable=True), product, model)
    finally:
        policy.SCORE_CHUNK_FIRMS = kept
    if other.expected_approval_share != share:
        problems.append(f"share {share} in chunks of {kept}, {other.expected_approval_share}")
    one = ProductTable.from_products([product])
    ranked = []
    for firm in sample:
        answer = rank_products_for_firm(firm, one, model, EVERYTHING, as_of=AS_OF)
        ranked += [
            r.approval_probability for r in answer.ranked if r.approval_probability is not None
        ]
    rows = np.arange(len(sample), dtype=np.int64)  # the sample is the first firms, ids 1…
    small = reach(Population(columns, rows), product, model).expected_approval_share
    if ranked and len(ranked) >= policy.MIN_CELL_FIRMS:
        expected = round(sum(ranked) / len(ranked), 4)
        if small is None or abs(small - expected) > 1e-4:
            problems.append(f"share of the first {len(sample)} firms {small}, ranking {expected}")
    return problems


def bench_size(
    columns: FirmColumns,
    sample: list[FirmFeatures],
    model: LearnedModel,
    repeat: int,
) -> tuple[float, list[str]]:
    """Time each picked product over ``columns``; the worst reach time and any problem."""
    n = columns.m
    print(
        f"\n{n:,} firms\n{'product':<44} {'rules':>5} {'eligible':>9} {'share ± margin':>16} "
        f"{'floor':>6} {'share':>6} {'all':>7} {'prior':>6} {'reach p50':>9} {'max':>6}"
    )
    prior = PriorModel()
    worst, problems = 0.0, []
    for why, product in pick_products(columns):
        table = ProductTable.from_products([product])
        floor = timed(lambda t=table: Population(columns).eligible(t, 0), repeat)  # type: ignore[misc]
        firms = population(columns, None, reachable=True)
        eligible = firms.eligible(table, 0)
        count = int(eligible.sum())
        share_ms, every_ms = [0.0], "-"
        if count >= policy.MIN_CELL_FIRMS:
            estimate = policy.approval_share(firms, eligible, product, model)
            share_ms = timed(
                lambda f=firms, e=eligible, p=product: policy.approval_share(f, e, p, model),  # type: ignore[misc]
                repeat,
            )
            if estimate.scored < count:  # a sample: score them all once, and compare
                started = time.perf_counter()
                every = policy._probabilities(firms, np.flatnonzero(eligible), product, model)
                every_ms = f"{(time.perf_counter() - started) * 1000:.0f}"
                exact = float(every.mean())
                if abs(estimate.mean - exact) > estimate.margin:
                    problems.append(
                        f"{product.id} at {n:,}: sampled {estimate.mean:.5f} ± "
                        f"{estimate.margin:.5f}, every eligible firm {exact:.5f}"
                    )
                print(
                    f"  #{product.id}: every eligible firm's mean {exact:.5f}, the sample's "
                    f"{estimate.mean:.5f} ± {estimate.margin:.5f} (99.9%)"
                )

        def preview(scorer: Any, p: ProductFeatures = product) -> Any:
            return reach(population(columns, None, reachable=True), p, scorer)

        result = preview(model)  # warm
        without = timed(lambda: preview(prior), repeat)
        times = timed(lambda: preview(model), repeat)
        p50, top = statistics.median(times), max(times)
        worst = max(worst, top)
        share = result.expected_approval_share
        margin = result.expected_approval_share_margin
        shown = "-" if share is None else f"{share:.4f}" + (f"±{margin:.4f}" if margin else "")
        label = f"{why}: {product.category} #{product.id}"
        print(
            f"{label:<44} {rules(product):>5} {count:>9,} {shown:>16} "
            f"{statistics.median(floor):>4.1f}ms {statistics.median(share_ms):>4.0f}ms "
            f"{every_ms:>5}ms {statistics.median(without):>4.0f}ms {p50:>7.0f}ms {top:>4.0f}ms"
        )
        if why == "widest":
            problems += check_share(columns, sample, product, model)
    return worst, problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--candidate", default=None, help="serve this train.candidates() model, not train's pick"
    )
    args = parser.parse_args(argv)

    print_machine(machine_info())
    print("\ntraining a model on 15,000 synthetic applications …", flush=True)
    model, trained = world_model(args.candidate)
    print(f"  model {model.meta['chosen']} (train chose {trained.chosen})")
    started = time.perf_counter()
    print(f"building {max(args.firms):,} firms with a need (not timed) …", flush=True)
    built, sample = build_columns(args.firms)
    print(f"  built in {time.perf_counter() - started:.0f} s")
    targets, problems = [], []
    for n in sorted(built):
        worst, wrong = bench_size(built[n], sample, model, args.repeat)
        problems += wrong
        targets.append((f"reach with a model at {n:,} firms ≤ {TARGET_MS:.0f} ms", worst))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    columns_mb = sum(c.nbytes for c in built.values()) / 2**20
    print(
        f"\npeak RSS {rss:,.0f} MiB (the columns of every size, {columns_mb:,.0f} MiB, "
        "the model and the world it trained on)"
    )
    print(f"load average at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"checked: the widest product's share, chunked and against ranking: {problems or 'ok'}")
    print_targets([(t, f"{ms:.0f} ms max", ms <= TARGET_MS) for t, ms in targets])
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
