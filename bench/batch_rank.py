"""Benchmark batch ranking (rank_batch) of many firms × a catalogue against per-firm loops."""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
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
from services.matching.eligibility import evaluate_firm
from services.matching.features import pair_features
from services.matching.model import LearnedModel
from services.matching.ranking import rank_products_for_firm, requested_terms, score_pairs
from services.matching.tables import FirmTable, Floats, Ints, ProductTable
from services.registry.seed.population import generate_firms
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import RankOptions

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_PAIRS_PER_SECOND = 1_000_000
TARGET_PEAK_RSS_GIB = 1.5
TOP_K = 5
WORLD_FIRMS, WORLD_APPLICATIONS, WORLD_SEED = 6_000, 15_000, 3
METHODS = ("batch-table", "batch-firms", "naive-predict", "naive-rank")
LABELS = {
    "batch-table": "rank_batch(FirmTable)",
    "batch-firms": "rank_batch(FirmFeatures list)",
    "naive-predict": "naive: one predict per firm",
    "naive-rank": "naive: rank_products_for_firm",
}


class BenchFailure(Exception):
    """The methods disagree on the top products: the run must exit non-zero."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--firms", type=int, default=100_000, help="firms ranked (100,000)")
    parser.add_argument("--products", type=int, default=500, help="catalogue size (500)")
    parser.add_argument("--chunk", type=int, default=100, help="rank_batch chunk_firms (100)")
    parser.add_argument(
        "--naive-firms", type=int, default=2_000, help="firms the naive loops rank (2,000)"
    )
    parser.add_argument(
        "--candidate",
        choices=("logistic_regression", "hist_gradient_boosting"),
        help="serve this training candidate instead of the one train() chooses",
    )
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--model-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.firms, args.products, args.chunk, args.naive_firms) < 1:
        parser.error("--firms, --products, --chunk and --naive-firms must be at least 1")
    args.naive_firms = min(args.naive_firms, args.firms)
    return args


# --- the worker: one method in a fresh process, so each peak RSS is its own -----------------


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def reset_peak_rss() -> bool:
    """Restart the peak-RSS count (Linux ≥ 4.0), so the ranking's peak is not the setup's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def features_stream(n: int) -> Iterator[FirmFeatures]:
    return (firm_features(firm) for firm in generate_firms(n))


def firm_table(n: int, part: int = 10_000) -> FirmTable:
    """n firms as one columnar table, built part by part so no 100,000 models stay alive."""
    parts: list[FirmTable] = []
    stream = features_stream(n)
    while len(parts) * part < n:
        batch = [next(stream) for _ in range(min(part, n - len(parts) * part))]
        parts.append(FirmTable.from_firms(batch, AS_OF))
    return FirmTable(
        **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(FirmTable)}
    )


def naive_predict(
    firms: Sequence[FirmFeatures], products: ProductTable, model: LearnedModel
) -> tuple[Ints, Floats, int]:
    """What a batch job would write first: ranking.py's steps firm by firm, one predict each."""
    n = products.n
    ids = np.full((len(firms), TOP_K), -1, dtype=np.int64)
    scores = np.full((len(firms), TOP_K), np.nan)
    eligible_pairs = 0
    every = np.arange(n, dtype=np.int64)
    for i, firm in enumerate(firms):
        table = FirmTable.from_firms([firm], AS_OF)
        amount, term = requested_terms(firm, RankOptions())
        elig = evaluate_firm(table, 0, products)
        eligible = np.flatnonzero(elig.eligible)
        zeros = np.zeros(len(eligible), dtype=np.int64)
        amounts, terms = np.full(len(eligible), amount), np.full(len(eligible), term)
        costs = estimate_costs(table, zeros, products, eligible, amounts, terms)
        probability = np.full(len(eligible), np.nan)
        if len(eligible):
            subset = type(elig)(failed=elig.failed[eligible], gap=elig.gap[eligible])
            x = pair_features(table, zeros, products, every[eligible], amounts, terms, subset)
            probability = model.predict(x)
        score = score_pairs(probability, costs, model.is_prior)
        order = np.argsort(-score, kind="stable")[:TOP_K]
        ids[i, : len(order)] = products.ids[eligible[order]]
        scores[i, : len(order)] = score[order]
        eligible_pairs += len(eligible)
    return ids, scores, eligible_pairs


def naive_rank(
    firms: Sequence[FirmFeatures], products: ProductTable, model: LearnedModel
) -> tuple[Ints, Floats, int]:
    """The service's own per-firm call (reasons and response models included, no near misses)."""
    ids = np.full((len(firms), TOP_K), -1, dtype=np.int64)
    scores = np.full((len(firms), TOP_K), np.nan)
    options = RankOptions(limit=TOP_K, near_miss_limit=0)
    eligible_pairs = 0
    for i, firm in enumerate(firms):
        response = rank_products_for_firm(firm, products, model, options, as_of=AS_OF)
        ids[i, : len(response.ranked)] = [r.product_id for r in response.ranked]
        scores[i, : len(response.ranked)] = [r.score for r in response.ranked]
        eligible_pairs += response.eligible
    return ids, scores, eligible_pairs


def worker(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    # Our own file, written by the parent process of this run.
    estimator, meta = pickle.loads(args.model_file.read_bytes())
    model = LearnedModel(estimator, meta)
    products = ProductTable.from_products(wide_catalogue(args.products))
    method = args.worker
    firms_in: FirmTable | list[FirmFeatures]
    if method == "batch-table":
        firms_in = firm_table(args.firms)
        count = firms_in.m
    else:
        count = args.firms if method == "batch-firms" else args.naive_firms
        firms_in = list(features_stream(count))
    prepared = time.perf_counter() - started
    _, setup_peak = rss_mib()
    reset = reset_peak_rss()
    before, _ = rss_mib()

    started = time.perf_counter()
    if method.startswith("batch"):
        result = rank_batch(
            firms_in, products, model, as_of=AS_OF, top_k=TOP_K, chunk_firms=args.chunk
        )
        ids, scores, eligible_pairs = (
            result.top_product_ids,
            result.top_scores,
            result.eligible_pairs,
        )
    else:
        assert isinstance(firms_in, list)
        loop = naive_predict if method == "naive-predict" else naive_rank
        ids, scores, eligible_pairs = loop(firms_in, products, model)
    seconds = time.perf_counter() - started
    _, peak = rss_mib()
    ru_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.savez(
        args.out.with_suffix(".npz"), ids=ids[: args.naive_firms], scores=scores[: args.naive_firms]
    )
    report = {
        "method": method,
        "firms": count,
        "pairs": count * products.n,
        "eligible_pairs": eligible_pairs,
        "seconds": seconds,
        "prepared_seconds": prepared,
        "rss_before_mib": before,
        "peak_ranking_mib": peak if reset else ru_peak,
        "peak_process_mib": max(setup_peak, peak, ru_peak),
        "peak_reset": reset,
    }
    args.out.write_text(json.dumps(report))
    return 0


# --- the parent: model, workers, checks, report ----------------------------------------------


@dataclass(frozen=True)
class Run:
    method: str
    report: dict[str, Any]
    ids: Ints
    scores: Floats

    @property
    def pairs_per_second(self) -> float:
        return float(self.report["pairs"]) / float(self.report["seconds"])


def run_worker(method: str, args: argparse.Namespace, model_file: Path, folder: Path) -> Run:
    out = folder / f"{method}.json"
    command = [
        sys.executable, "-m", "bench.batch_rank", "--worker", method,
        "--model-file", str(model_file), "--out", str(out), "--firms", str(args.firms),
        "--products", str(args.products), "--chunk", str(args.chunk),
        "--naive-firms", str(args.naive_firms),
    ]  # fmt: skip
    subprocess.run(command, cwd=REPO_ROOT, check=True)
    arrays = np.load(out.with_suffix(".npz"))
    run = Run(method, json.loads(out.read_text()), arrays["ids"], arrays["scores"])
    print(
        f"  {LABELS[method]:<32} {run.report['seconds']:8.2f} s, "
        f"{run.pairs_per_second:>12,.0f} pairs/s",
        flush=True,
    )
    return run


def same_order(a: Run, b: Run, tolerance: float) -> list[int]:
    """Firms whose top products differ beyond runs of scores equal within ``tolerance``.

    A linear model's probabilities can differ in the last bit with a row's position in the
    matrix (BLAS), and the service rounds scores to 6 decimals, so near-equal scores may
    swap; anything else is a wrong result.
    """
    wrong = []
    for i in range(min(len(a.ids), len(b.ids))):
        if np.array_equal(a.ids[i], b.ids[i]):
            continue
        scores = a.scores[i]
        if not np.allclose(scores, b.scores[i], atol=tolerance, equal_nan=True):
            wrong.append(i)
            continue
        found = a.ids[i] >= 0
        groups = np.concatenate([[0], np.cumsum(~np.isclose(np.diff(scores), 0, atol=tolerance))])
        last = groups[found][-1] if found.any() else -1
        for g in np.unique(groups[found]):
            members = (groups == g) & found
            # the last run may be cut at k differently by either side
            if g != last and set(a.ids[i][members]) != set(b.ids[i][members]):
                wrong.append(i)
                break
    return wrong


def print_report(runs: dict[str, Run], args: argparse.Namespace, notes: list[str]) -> None:
    naive = runs["naive-predict"]
    print(
        f"\n{'method':<32} {'firms':>8} {'pairs':>12} {'seconds':>9} {'pairs/s':>12} "
        f"{'× naive':>8} {'peak RSS ranking':>17} {'peak RSS process':>17}"
    )
    for method in METHODS:
        run = runs[method]
        r = run.report
        ratio = run.pairs_per_second / naive.pairs_per_second
        print(
            f"{LABELS[method]:<32} {r['firms']:>8,} {r['pairs']:>12,} {r['seconds']:>9.2f} "
            f"{run.pairs_per_second:>12,.0f} {ratio:>8.1f} {r['peak_ranking_mib']:>13,.0f} MiB "
            f"{r['peak_process_mib']:>13,.0f} MiB"
        )
    for method in ("naive-predict", "naive-rank"):
        r = runs[method].report
        scaled = r["seconds"] * args.firms / r["firms"]
        print(f"  {LABELS[method]} scaled to {args.firms:,} firms: {scaled:,.0f} s")
    batch = runs["batch-firms"].report
    print(
        f"  eligible pairs: {batch['eligible_pairs']:,} of {batch['pairs']:,} "
        f"({batch['eligible_pairs'] / batch['pairs']:.1%}); model called on those only"
    )
    before = (f"{LABELS[m]} {runs[m].report['rss_before_mib']:,.0f} MiB" for m in METHODS[:2])
    print("  RSS before ranking: " + ", ".join(before))
    for note in notes:
        print(f"  {note}")

    limit_mib = TARGET_PEAK_RSS_GIB * 1024
    targets = [
        (
            f"≥ {TARGET_PAIRS_PER_SECOND:,} pairs/s, {LABELS[m]}",
            f"{runs[m].pairs_per_second:,.0f}",
            runs[m].pairs_per_second >= TARGET_PAIRS_PER_SECOND,
        )
        for m in ("batch-table", "batch-firms")
    ] + [
        (
            f"peak RSS ≤ {TARGET_PEAK_RSS_GIB} GiB, {LABELS[m]}",
            f"{runs[m].report['peak_process_mib']:,.0f} MiB",
            runs[m].report["peak_process_mib"] <= limit_mib,
        )
        for m in ("batch-table", "batch-firms")
    ]
    print_targets(targets)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    print(
        f"batch ranking: {args.firms:,} firms × {args.products:,} products, chunks of "
        f"{args.chunk} firms; naive loops on the first {args.naive_firms:,} firms"
    )
    started = time.perf_counter()
    world = list(generate_firms(WORLD_FIRMS))
    rows = export_rows(world, history(world, WORLD_APPLICATIONS, WORLD_SEED))
    model, trained = learned_model(rows, candidate=args.candidate)
    notes = [
        f"model       {model.meta['chosen']} (train chose {trained.chosen}), fitted on "
        f"{trained.meta['rows']['train']:,} decided applications of a {WORLD_FIRMS:,}-firm "
        f"world ({time.perf_counter() - started:.1f} s, not measured)",
        "each method runs in a fresh process; peak RSS ranking = VmHWM reset before the timed "
        "call (inputs stay resident); process = whole worker, including input generation",
    ]
    with tempfile.TemporaryDirectory(prefix="finmatch-bench-batch-") as folder:
        model_file = Path(folder) / "model.pkl"
        model_file.write_bytes(pickle.dumps((model.estimator, dict(model.meta))))
        runs = {method: run_worker(method, args, model_file, Path(folder)) for method in METHODS}
    prep = {m: runs[m].report["prepared_seconds"] for m in ("batch-table", "batch-firms")}
    notes.append(
        f"inputs      generated and validated before timing: FirmTable "
        f"{prep['batch-table']:.1f} s, FirmFeatures list {prep['batch-firms']:.1f} s (not measured)"
    )
    print_machine(machine_info(("numpy", "scikit-learn", "tqdm")), notes)

    reference = runs["batch-firms"]
    problems = []
    for method, tolerance in (("batch-table", 1e-9), ("naive-predict", 1e-9), ("naive-rank", 1e-6)):
        wrong = same_order(reference, runs[method], tolerance)
        if wrong:
            problems.append(f"{LABELS[method]} differs from rank_batch for firms {wrong[:10]}")
    print_report(runs, args, [])
    if problems:
        print("\nFAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    checked = min(args.naive_firms, args.firms)
    print(
        f"\nchecked: the top {TOP_K} of the first {checked:,} firms agree across all four methods"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
