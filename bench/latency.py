"""Benchmark ranking one firm against 1,000 products in-process: p50/p99, and where time goes."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.world import (
    AS_OF,
    export_rows,
    firm_features,
    history,
    learned_model,
    machine_info,
    print_machine,
    print_targets,
    wide_catalogue,
)
from services.matching.batch import rank_batch
from services.matching.cost import estimate_costs
from services.matching.eligibility import PairEligibility, evaluate_firm
from services.matching.features import pair_features
from services.matching.model import Scorer
from services.matching.ranking import rank_products_for_firm, requested_terms
from services.matching.tables import FirmTable, ProductTable
from services.registry.seed.population import generate_firms
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import RankOptions

TARGET_P99_MS = 10.0
WORLD_FIRMS, WORLD_APPLICATIONS, WORLD_SEED = 6_000, 15_000, 3
FIRM_SEED = 99  # not the world's seed: the ranked firms are not the ones trained on


class BenchFailure(Exception):
    """A ranking came out wrong: the run must exit non-zero."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=1_000, help="catalogue size (1,000)")
    parser.add_argument("--calls", type=int, default=3_000, help="timed calls per stage (3,000)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed calls first (300)")
    parser.add_argument("--firms", type=int, default=50, help="distinct firms cycled (50)")
    parser.add_argument(
        "--candidate",
        choices=("logistic_regression", "hist_gradient_boosting"),
        help="serve this training candidate instead of the one train() chooses",
    )
    args = parser.parse_args(argv)
    if min(args.products, args.calls, args.firms) < 1 or args.warmup < 0:
        parser.error("--products, --calls and --firms must be at least 1")
    return args


def timed(call: Callable[[int], Any], calls: int, warmup: int) -> np.ndarray[Any, Any]:
    """Milliseconds of ``calls`` calls of call(i), after ``warmup`` untimed ones."""
    for i in range(warmup):
        call(i)
    out = np.empty(calls)
    clock = time.perf_counter_ns
    for i in range(calls):
        started = clock()
        call(i)
        out[i] = clock() - started
    return out / 1e6


class Stages:
    """The steps of rank_products_for_firm, one at a time, for the floor measurements."""

    def __init__(self, firms: Sequence[FirmFeatures], products: ProductTable, model: Scorer):
        self.firms, self.products, self.model = firms, products, model
        n = products.n
        self.zeros, self.every = np.zeros(n, dtype=np.int64), np.arange(n, dtype=np.int64)
        # Inputs of the later stages, precomputed per firm so each stage is timed alone.
        self.prepared = [self.rules_and_costs(i) for i in range(len(firms))]
        self.features = [self.pair_features(i) for i in range(len(firms))]

    def rules_and_costs(self, i: int) -> tuple[FirmTable, PairEligibility, Any, float, float]:
        firm = self.firms[i % len(self.firms)]
        table = FirmTable.from_firms([firm], AS_OF)
        amount, term = requested_terms(firm, RankOptions())
        elig = evaluate_firm(table, 0, self.products)
        n = self.products.n
        amounts, terms = np.full(n, amount), np.full(n, term)
        costs = estimate_costs(table, self.zeros, self.products, self.every, amounts, terms)
        return table, elig, costs, amount, term

    def pair_features(self, i: int) -> np.ndarray[Any, Any]:
        table, elig, _, amount, term = self.prepared[i % len(self.firms)]
        eligible = np.flatnonzero(elig.eligible)
        k = len(eligible)
        subset = PairEligibility(failed=elig.failed[eligible], gap=elig.gap[eligible])
        return pair_features(
            table,
            self.zeros[:k],
            self.products,
            eligible,
            np.full(k, amount),
            np.full(k, term),
            subset,
        )

    def predict(self, i: int) -> None:
        self.model.predict(self.features[i % len(self.firms)])

    def contributions(self, i: int) -> None:
        self.model.contributions(self.features[i % len(self.firms)][:20])


def check(
    firms: Sequence[FirmFeatures], products: ProductTable, model: Scorer, stages: Stages
) -> list[str]:
    """The timed call's answers agree with rank_batch and the eligibility floor."""
    problems = []
    batch = rank_batch(firms, products, model, as_of=AS_OF, top_k=5)
    for i, firm in enumerate(firms):
        response = rank_products_for_firm(firm, products, model, RankOptions(), as_of=AS_OF)
        scores = [r.score for r in response.ranked]
        eligible = int(stages.prepared[i][1].eligible.sum())
        if scores != sorted(scores, reverse=True) or response.eligible != eligible:
            problems.append(f"firm {i}: unordered scores or eligible {response.eligible}")
        batch_scores = [s for _, s in batch.top(i)]
        if not np.allclose(batch_scores, scores[:5], atol=1e-6):
            problems.append(f"firm {i}: top scores differ from rank_batch")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"ranking latency: one firm × {args.products:,} products, {args.calls:,} timed calls")
    started = time.perf_counter()
    world = list(generate_firms(WORLD_FIRMS))
    rows = export_rows(world, history(world, WORLD_APPLICATIONS, WORLD_SEED))
    model, trained = learned_model(rows, candidate=args.candidate)
    products = ProductTable.from_products(wide_catalogue(args.products))  # cached, as served
    drawn = [firm_features(f) for f in generate_firms(args.firms * 4, seed=FIRM_SEED)]
    # Mostly firms with a stated need, as in the portal, plus a few ranked for the default.
    firms = sorted(drawn, key=lambda f: f.need_amount_yuan is None)[: args.firms]
    firms[-max(1, args.firms // 10) :] = [f for f in drawn if f.need_amount_yuan is None][
        : max(1, args.firms // 10)
    ]
    stages = Stages(firms, products, model)
    prepared = time.perf_counter() - started
    options = RankOptions()

    def rank(i: int) -> None:
        rank_products_for_firm(firms[i % len(firms)], products, model, options, as_of=AS_OF)

    measured = {
        "rank_products_for_firm (all of it)": timed(rank, args.calls, args.warmup),
        "  rules + costs (tables, eligibility, cost)": timed(
            stages.rules_and_costs, args.calls, args.warmup
        ),
        "  pair_features (eligible products)": timed(stages.pair_features, args.calls, args.warmup),
        "  model.predict (one call)": timed(stages.predict, args.calls, args.warmup),
        "  model.contributions (top 20)": timed(stages.contributions, args.calls, args.warmup),
    }
    problems = check(firms, products, model, stages)

    eligible = np.array([s[1].eligible.sum() for s in stages.prepared])
    print_machine(
        machine_info(("numpy", "scikit-learn", "pydantic")),
        [
            f"model       {model.meta['chosen']} (train chose {trained.chosen}), fitted on "
            f"{trained.meta['rows']['train']:,} decided applications",
            f"firms       {len(firms)} cycled; eligible products per firm: median "
            f"{np.median(eligible):.0f}, min {eligible.min()}, max {eligible.max()}",
            "options     RankOptions() defaults: limit 20, near misses 10, reasons in zh",
            f"setup       {prepared:.1f} s (world, training, catalogue; not measured)",
        ],
    )
    print(f"\n{'stage (ms per call)':<46} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'mean':>7}")
    for label, ms in measured.items():
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        print(f"{label:<46} {p50:>7.3f} {p90:>7.3f} {p99:>7.3f} {ms.max():>7.3f} {ms.mean():>7.3f}")
    total = measured["rank_products_for_firm (all of it)"]
    parts = sum(float(np.median(ms)) for label, ms in measured.items() if label.startswith("  "))
    print(
        f"  the rest (reasons, near misses, response models): ~{np.median(total) - parts:.3f} ms "
        "of the median"
    )
    p99 = float(np.percentile(total, 99))
    print_targets(
        [
            (
                f"p99 ≤ {TARGET_P99_MS:g} ms, one firm × {products.n:,} products",
                f"{p99:.2f} ms",
                p99 <= TARGET_P99_MS,
            )
        ]
    )
    if problems:
        print("\nFAILED: " + "; ".join(problems[:10]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
