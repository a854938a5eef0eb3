"""Benchmark ranking quality on held-out synthetic firms against the hidden approval model."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import brier_score_loss, log_loss, ndcg_score

from bench.world import (
    AS_OF,
    INSTITUTION_NAMES,
    catalogue_products,
    export_rows,
    firm_features,
    history,
    learned_model,
    machine_info,
    print_machine,
    print_targets,
    size_class,
)
from services.matching.batch import rank_batch, requested_columns
from services.matching.cost import estimate_costs
from services.matching.eligibility import evaluate_pairs
from services.matching.features import pair_features
from services.matching.model import LearnedModel, PriorModel
from services.matching.ranking import COST_WEIGHT, rank_products_for_firm
from services.matching.tables import FirmTable, Floats, Ints, ProductTable
from services.matching.train import TrainingSet, TrainResult, training_set
from services.registry.seed.approval_model import true_approval_probability
from services.registry.seed.catalogue import products as catalogue_specs
from services.registry.seed.population import generate_firms
from shared.schemas.matching import RankOptions

K = 5
TARGET_OVER_RULES = 1.15
NOT_RANKED = -1e9  # ineligible products: every method leaves them out, all tied last
# A small grid for the peer, picked on the same time holdout our training picks on.
LGBM_GRID: tuple[dict[str, Any], ...] = (
    {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31, "min_child_samples": 20},
    {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 20},
    {"n_estimators": 500, "learning_rate": 0.03, "num_leaves": 7, "min_child_samples": 40},
    {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 50,
     "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8},
)  # fmt: skip


class BenchFailure(Exception):
    """The ranking came out wrong (not merely worse): the run must exit non-zero."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--firms", type=int, default=6_000, help="firms in the world (6,000)")
    parser.add_argument(
        "--applications", type=int, default=15_000, help="applications in the history (15,000)"
    )
    parser.add_argument(
        "--holdout-firms", type=int, default=1_000, help="unseen firms evaluated (1,000)"
    )
    parser.add_argument("--seed", type=int, default=3, help="history and split seed (3)")
    args = parser.parse_args(argv)
    if min(args.firms, args.applications, args.holdout_firms) < 1:
        parser.error("--firms, --applications and --holdout-firms must be at least 1")
    return args


# --- the peer: LightGBM LambdaRank on our feature matrix --------------------------------------


def by_firm(data: TrainingSet) -> tuple[TrainingSet, Ints]:
    """Rows sorted by firm (LightGBM wants each query's rows together) and the group sizes."""
    data = data.take(np.argsort(data.firm_key, kind="stable"))
    _, sizes = np.unique(data.firm_key, return_counts=True)
    return data, sizes


def holdout_ndcg(scores: Floats, holdout: TrainingSet) -> float:
    """NDCG@5 of approvals per firm with ≥2 holdout rows and one approval, averaged."""
    values = []
    for firm in np.unique(holdout.firm_key):
        rows = holdout.firm_key == firm
        if rows.sum() >= 2 and holdout.y[rows].any():
            values.append(ndcg_score(holdout.y[rows][None, :], scores[rows][None, :], k=K))
    return float(np.mean(values))


def fit_lambdarank(fit_part: TrainingSet, holdout: TrainingSet, seed: int) -> tuple[Any, str]:
    """The grid's best LGBMRanker (objective lambdarank) by time-holdout NDCG@5."""
    from lightgbm import LGBMRanker

    data, groups = by_firm(fit_part)
    best: tuple[float, Any, str] | None = None
    for params in LGBM_GRID:
        ranker = LGBMRanker(
            objective="lambdarank", random_state=seed, deterministic=True, verbose=-1, **params
        )
        ranker.fit(data.X, data.y, group=groups)
        score = holdout_ndcg(ranker.predict(holdout.X), holdout)
        described = ", ".join(f"{k}={v}" for k, v in params.items())
        print(f"  LGBMRanker {described}: time-holdout NDCG@5 {score:.4f}", flush=True)
        if best is None or score > best[0]:
            best = (score, ranker, described)
    assert best is not None
    return best[1], best[2]


def fit_binary(fit_part: TrainingSet, holdout: TrainingSet, seed: int) -> tuple[Any, str]:
    """The grid's best LGBMClassifier (objective binary) by time-holdout log loss.

    Log loss, as train.train picks our candidate: the peer serves a probability too, so it is
    chosen by the same proper score on the same holdout. Each setting's Brier and NDCG@5 are
    printed beside it.
    """
    from lightgbm import LGBMClassifier

    best: tuple[float, Any, str] | None = None
    for params in LGBM_GRID:
        classifier = LGBMClassifier(
            objective="binary", random_state=seed, deterministic=True, verbose=-1, **params
        )
        classifier.fit(fit_part.X, fit_part.y)
        p = classifier.predict_proba(holdout.X)[:, 1]
        loss = float(log_loss(holdout.y, p, labels=[0, 1]))
        described = ", ".join(f"{k}={v}" for k, v in params.items())
        print(
            f"  LGBMClassifier {described}: time-holdout log loss {loss:.4f}, "
            f"Brier {brier_score_loss(holdout.y, p):.4f}, NDCG@5 {holdout_ndcg(p, holdout):.4f}",
            flush=True,
        )
        if best is None or loss < best[0]:
            best = (loss, classifier, described)
    assert best is not None
    return best[1], best[2]


# --- the held-out firms: truth and every method's scores -------------------------------------


@dataclass(frozen=True)
class HeldOut:
    """m held-out firms × n products: eligibility, costs, truth, features."""

    firms: list[dict[str, Any]]
    eligible: npt.NDArray[np.bool_]  # m × n
    coverage: Floats
    rate: Floats  # effective annual rate as a fraction
    can_lend: npt.NDArray[np.bool_]
    true_p: Floats
    features: Floats  # (m·n) × features, firm-major

    @property
    def utility(self) -> Floats:
        """What our score optimises, with the hidden model's probability in place of ours."""
        value: Floats = self.true_p * self.coverage - COST_WEIGHT * self.rate
        return value


def held_out(firms: list[dict[str, Any]], products: ProductTable) -> HeldOut:
    features = [firm_features(f) for f in firms]
    table = FirmTable.from_firms(features, AS_OF)
    m, n = table.m, products.n
    f = np.repeat(np.arange(m), n)
    p = np.tile(np.arange(n), m)
    amount, term = requested_columns(table)
    elig = evaluate_pairs(table, f, products, p)
    costs = estimate_costs(table, f, products, p, amount[f], term[f])
    specs = catalogue_specs()
    true_p = np.empty(m * n)
    for k, (i, j) in enumerate(zip(f.tolist(), p.tolist(), strict=True)):
        institution, spec = specs[j]
        # The same request our ranking scores: the firm's stated need, as it stated it.
        true_p[k] = true_approval_probability(
            firms[i],
            spec,
            int(amount[i]),
            int(term[i]),
            str(features[i].size_class.value),
            institution_name=INSTITUTION_NAMES[institution],
            as_of=AS_OF,
        )
    return HeldOut(
        firms=firms,
        eligible=elig.eligible.reshape(m, n),
        coverage=costs.coverage.reshape(m, n),
        rate=(costs.effective_rate_bp / 10_000).reshape(m, n),
        can_lend=(costs.offer_amount > 0).reshape(m, n),
        true_p=true_p.reshape(m, n),
        features=pair_features(table, f, products, p, amount[f], term[f], elig),
    )


def only_eligible(scores: Floats, eligible: npt.NDArray[np.bool_]) -> Floats:
    out: Floats = np.where(eligible, scores, NOT_RANKED)
    return out


def learned_scores(
    firms: list[dict[str, Any]], products: ProductTable, model: LearnedModel
) -> Floats:
    """Our ranker's scores through rank_batch (all eligible products ranked)."""
    features = [firm_features(f) for f in firms]
    result = rank_batch(features, products, model, as_of=AS_OF, top_k=products.n)
    position = {int(pid): j for j, pid in enumerate(products.ids)}
    scores = np.full((len(firms), products.n), NOT_RANKED)
    for i in range(len(firms)):
        for pid, score in result.top(i):
            scores[i, position[pid]] = score
    # The batch is the service's per-firm ranking, firm for firm: check a sample.
    options = RankOptions(limit=K, near_miss_limit=0)
    for i in range(0, len(firms), max(1, len(firms) // 25)):
        one = rank_products_for_firm(features[i], products, model, options, as_of=AS_OF)
        served = [r.score for r in one.ranked]
        if not np.allclose(served, [s for _, s in result.top(i)][:K], atol=1e-6):
            raise BenchFailure(f"rank_batch disagrees with rank_products_for_firm on firm {i}")
    return scores


@dataclass(frozen=True)
class Outcome:
    label: str
    ndcg: Floats  # per evaluated firm
    recall: Floats


def evaluate(label: str, scores: Floats, truth: HeldOut, rows: npt.NDArray[np.bool_]) -> Outcome:
    """NDCG@5 (sklearn, per firm) and recall@5 against the true utility, for firms ``rows``."""
    relevance = np.maximum(truth.utility, 0.0)  # a product worth less than nothing is not relevant
    ndcg, recall = [], []
    for i in np.flatnonzero(rows):
        ndcg.append(ndcg_score(relevance[i][None, :], scores[i][None, :], k=K))
        wanted = np.argsort(-truth.utility[i], kind="stable")[
            : min(K, int((relevance[i] > 0).sum()))
        ]
        ranked = np.argsort(-scores[i], kind="stable")[:K]
        ranked = ranked[scores[i][ranked] > NOT_RANKED]
        recall.append(len(set(wanted.tolist()) & set(ranked.tolist())) / len(wanted))
    return Outcome(label, np.array(ndcg), np.array(recall))


def summary(values: Floats) -> str:
    return f"{values.mean():.4f} ± {1.96 * values.std(ddof=1) / np.sqrt(len(values)):.4f}"


def true_p_of_rows(
    data: TrainingSet, rows: Sequence[Mapping[str, Any]], firms: list[dict[str, Any]]
) -> Floats:
    """The hidden model's probability for each decided application of ``data``."""
    by_id = {r["application_id"]: r for r in rows}
    specs = catalogue_specs()
    out = np.empty(len(data))
    for k, application in enumerate(data.application_id.tolist()):
        row = by_id[application]
        institution, spec = specs[row["product_id"] - 1]
        firm = firms[row["firm_id"] - 1]
        out[k] = true_approval_probability(
            firm,
            spec,
            row["requested_amount_yuan"],
            row["requested_term_months"],
            size_class(firm),
            institution_name=INSTITUTION_NAMES[institution],
            as_of=row["submitted_at"].date(),
        )
    return out


def method_scores(
    truth: HeldOut,
    products: ProductTable,
    model: LearnedModel,
    lgbm_raw: Floats,
    binary_p: Floats,
    approvals: Floats,
    rng: np.random.Generator,
) -> dict[str, Floats]:
    """Every method's score per (held-out firm, product); ineligible products are NOT_RANKED."""
    m, n = truth.eligible.shape
    eligible = truth.eligible
    lgbm_p = 1.0 / (1.0 + np.exp(-lgbm_raw))
    return {
        "learned ranker (ours)": learned_scores(truth.firms, products, model),
        "LightGBM LambdaRank: score": only_eligible(lgbm_raw, eligible),
        "LightGBM LambdaRank: σ(score)×cov−cost": only_eligible(
            lgbm_p * truth.coverage - COST_WEIGHT * truth.rate, eligible
        ),
        "LightGBM binary: p": only_eligible(binary_p, eligible),
        # The peer's probability in our utility, exactly where ours goes.
        "LightGBM binary: p×cov−cost": only_eligible(
            binary_p * truth.coverage - COST_WEIGHT * truth.rate, eligible
        ),
        # Products that cannot lend this firm anything (offer 0, costed at "0 bp") go last ...
        "rule-only: cheapest first": only_eligible(
            np.where(truth.can_lend, -truth.rate, -1e6), eligible
        ),
        # ... which the literal reading does not do: shown, not the target's baseline.
        "rule-only, literal (lends 0 = 0 bp)": only_eligible(-truth.rate, eligible),
        "prior: coverage − cost (cold start)": learned_scores(truth.firms, products, PriorModel()),
        "popularity: most approved": only_eligible(np.broadcast_to(approvals, (m, n)), eligible),
        "random (eligible)": only_eligible(rng.random((m, n)), eligible),
        "oracle: true utility (eligible)": only_eligible(truth.utility, eligible),
    }


def print_quality(outcomes: Mapping[str, Outcome], many: npt.NDArray[np.bool_]) -> None:
    print(
        f"\n{'method':<40} {'NDCG@5 (± 95% CI)':>18} {'recall@5':>18} "
        f"{f'NDCG@5, >{K} eligible':>20}"
    )
    for o in outcomes.values():
        print(
            f"{o.label:<40} {summary(o.ndcg):>18} {summary(o.recall):>18} "
            f"{summary(o.ndcg[many]):>20}"
        )
    print(
        f"  last column: the {int(many.sum()):,} of {len(many):,} evaluated firms with more than "
        f"{K} eligible products, where the top {K} is a choice rather than the whole list"
    )


@dataclass(frozen=True)
class Brier:
    """Brier scores of ours and of the LightGBM binary peer, the two ways the bench measures."""

    ours_hidden: float  # against the hidden probability, eligible held-out pairs
    peer_hidden: float
    ours_outcomes: float  # against outcomes, time holdout
    peer_outcomes: float


def better_variant(outcomes: Mapping[str, Outcome], labels: Sequence[str]) -> Outcome:
    return max((outcomes[label] for label in labels), key=lambda o: o.ndcg.mean())


def print_targets_and_ceiling(
    outcomes: Mapping[str, Outcome], many: npt.NDArray[np.bool_], brier: Brier
) -> None:
    learned = outcomes["learned ranker (ours)"]
    peer = better_variant(
        outcomes, ("LightGBM LambdaRank: score", "LightGBM LambdaRank: σ(score)×cov−cost")
    )
    binary = better_variant(outcomes, ("LightGBM binary: p", "LightGBM binary: p×cov−cost"))
    rules = outcomes["rule-only: cheapest first"]
    oracle = outcomes["oracle: true utility (eligible)"]
    for what, other in (("LambdaRank", peer), ("binary", binary)):
        print(f"  {what} peer in the targets: the better variant, {other.label!r}")
        print(f"    learned − peer, NDCG@5 per firm (paired): {summary(learned.ndcg - other.ndcg)}")

    def over_rules(o: Outcome, rows: npt.NDArray[np.bool_] | slice = slice(None)) -> float:
        return float(o.ndcg[rows].mean() / rules.ndcg[rows].mean())

    print_targets(
        [
            (
                "learned NDCG@5 ≥ LightGBM LambdaRank NDCG@5",
                f"{learned.ndcg.mean():.4f} vs {peer.ndcg.mean():.4f}",
                learned.ndcg.mean() >= peer.ndcg.mean(),
            ),
            (
                "learned NDCG@5 ≥ LightGBM binary NDCG@5",
                f"{learned.ndcg.mean():.4f} vs {binary.ndcg.mean():.4f}",
                learned.ndcg.mean() >= binary.ndcg.mean(),
            ),
            (
                "learned Brier ≤ LightGBM binary, vs hidden p",
                f"{brier.ours_hidden:.4f} vs {brier.peer_hidden:.4f}",
                brier.ours_hidden <= brier.peer_hidden,
            ),
            (
                "learned Brier ≤ LightGBM binary, vs outcomes",
                f"{brier.ours_outcomes:.4f} vs {brier.peer_outcomes:.4f}",
                brier.ours_outcomes <= brier.peer_outcomes,
            ),
            (
                f"learned NDCG@5 ≥ {TARGET_OVER_RULES:g} × rule-only",
                f"{over_rules(learned):.3f}×",
                over_rules(learned) >= TARGET_OVER_RULES,
            ),
            (
                f"  the same, firms with > {K} eligible products",
                f"{over_rules(learned, many):.3f}×",
                over_rules(learned, many) >= TARGET_OVER_RULES,
            ),
        ]
    )
    print(
        f"  ceiling: ranking by the true utility itself (oracle) reaches "
        f"{over_rules(oracle):.3f}× rule-only over all evaluated firms and "
        f"{over_rules(oracle, many):.3f}× over those with > {K} eligible"
    )


def print_calibration(
    truth: HeldOut,
    ours_p: Floats,
    lgbm_raw: Floats,
    binary_p: Floats,
    trained: TrainResult,
    binary_holdout_p: Floats,
    time_holdout_true: Floats,
) -> Brier:
    """Our probabilities and the peers' against the hidden model's, and against outcomes."""
    hidden_p = truth.true_p.reshape(-1)
    served = truth.eligible.reshape(-1)
    lgbm_p = 1.0 / (1.0 + np.exp(-lgbm_raw))
    holdout = trained.holdout
    brier = Brier(
        ours_hidden=float(np.mean((ours_p - hidden_p)[served] ** 2)),
        peer_hidden=float(np.mean((binary_p - hidden_p)[served] ** 2)),
        ours_outcomes=trained.metrics["brier"],
        peer_outcomes=float(brier_score_loss(holdout.y, binary_holdout_p)),
    )
    lines = [
        ("ours vs the hidden probability, eligible held-out pairs", brier.ours_hidden,
         f"({int(served.sum()):,} pairs)"),
        ("ours vs the hidden probability, all held-out pairs",
         float(np.mean((ours_p - hidden_p) ** 2)), f"({len(served):,} pairs)"),
        ("LightGBM binary vs the hidden probability, eligible", brier.peer_hidden, ""),
        ("LightGBM binary vs the hidden probability, all",
         float(np.mean((binary_p - hidden_p) ** 2)), ""),
        ("σ(LambdaRank score) vs the hidden probability, eligible",
         float(np.mean((lgbm_p - hidden_p)[served] ** 2)), "(a ranking score, not a probability)"),
        (f"ours vs outcomes, time holdout ({len(holdout):,} applications)", brier.ours_outcomes,
         f"(predicting the base rate {trained.metrics['brier_base']:.4f}; the hidden model "
         f"itself {brier_score_loss(holdout.y, time_holdout_true):.4f})"),
        ("LightGBM binary vs outcomes, time holdout", brier.peer_outcomes, ""),
    ]  # fmt: skip
    print("\ncalibration (Brier)")
    for label, value, note in lines:
        print(f"  {label:<57} {value:.4f}  {note}".rstrip())
    return brier


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    firms = list(generate_firms(args.firms))
    with_need = np.flatnonzero([bool(f["need_amount_yuan"]) for f in firms])
    if args.holdout_firms >= len(with_need):
        raise SystemExit(f"--holdout-firms must be below the {len(with_need)} firms with a need")
    unseen = set(rng.choice(with_need, size=args.holdout_firms, replace=False).tolist())
    train_firms = [f for i, f in enumerate(firms) if i not in unseen]
    test_firms = [firms[i] for i in sorted(unseen)]
    print(
        f"quality: {args.firms:,} firms; {args.applications:,} applications by the "
        f"{len(train_firms):,} training firms; {len(test_firms):,} unseen firms with a need"
    )
    rows = export_rows(train_firms, history(train_firms, args.applications, args.seed))
    model, trained = learned_model(rows, seed=0)
    data = training_set(rows)
    holdout = trained.holdout
    fit_part = data.take(~np.isin(data.application_id, holdout.application_id))
    ranker, lgbm_params = fit_lambdarank(fit_part, holdout, seed=0)
    binary, binary_params = fit_binary(fit_part, holdout, seed=0)
    products = ProductTable.from_products(catalogue_products())
    truth = held_out(test_firms, products)
    prepared = time.perf_counter() - started

    m, n = truth.eligible.shape
    approvals = np.zeros(n)
    np.add.at(approvals, data.product_id[data.y == 1] - 1, 1.0)
    lgbm_raw = ranker.predict(truth.features).reshape(m, n)
    binary_p = binary.predict_proba(truth.features)[:, 1].reshape(m, n)
    methods = method_scores(truth, products, model, lgbm_raw, binary_p, approvals, rng)
    evaluated = (truth.utility > 0).any(axis=1) & truth.eligible.any(axis=1)
    outcomes = {label: evaluate(label, s, truth, evaluated) for label, s in methods.items()}
    many = (truth.eligible.sum(axis=1) > K)[evaluated]
    served = truth.eligible.reshape(-1)

    print_machine(
        machine_info(("numpy", "scikit-learn", "lightgbm")),
        [
            f"model       {trained.chosen} (train.train), chosen on the newest "
            f"{len(holdout):,} of {len(data):,} decided applications (fitted on the older "
            f"{len(fit_part):,}: its holdout Brier below), then served refitted on all "
            f"{len(data):,}; the peers are fitted on the older rows only, so the NDCG on "
            f"unseen firms gives ours the newest {len(holdout):,} decisions more to learn from",
            f"peer        LGBMRanker(objective=lambdarank), the same rows and features, grouped "
            f"by firm; grid best on that holdout (NDCG@5): {lgbm_params}",
            f"peer        LGBMClassifier(objective=binary), the same rows and features; grid "
            f"best on that holdout (log loss): {binary_params}",
            f"evaluated   {int(evaluated.sum()):,} of {m:,} unseen firms (the others have no "
            f"eligible product or none worth applying for); {int(served.sum()):,} of "
            f"{m * n:,} pairs eligible",
            f"setup       {prepared:.1f} s (world, history, training, truth; not measured)",
        ],
    )
    print_quality(outcomes, many)
    brier = print_calibration(
        truth,
        model.predict(truth.features),
        lgbm_raw.reshape(-1),
        binary_p.reshape(-1),
        trained,
        binary.predict_proba(holdout.X)[:, 1],
        true_p_of_rows(holdout, rows, train_firms),
    )
    print_targets_and_ceiling(outcomes, many, brier)
    print(
        f"\nlightgbm {metadata.version('lightgbm')}: a bench-only dependency "
        "(pip install -e '.[bench]')"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchFailure as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        sys.exit(1)
