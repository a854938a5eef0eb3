"""Rank many firms against a whole catalogue in chunks: precomputed top-k and coverage statistics.

Scores are those of ranking.rank_products_for_firm, pair for pair: the same eligibility rules,
costs, features, model and score formula, and the same order (score descending, then catalogue
position). One caveat, shared with the per-firm path: a linear model scores rows through BLAS,
whose sums can differ in the last bit (~1e-15) with a row's position in the matrix, so two
products with identical scores may swap.

What changes is the shape of the work. A chunk of firms is crossed with every product and goes
through each step as one vectorised call, with one model call per chunk, so the per-call
overhead of scikit-learn is paid once per chunk rather than once per firm. Only the per-firm
results (top k, eligible count) outlive a chunk, so peak memory follows ``chunk_firms`` ×
products, not the number of firms.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from types import MappingProxyType

import numpy as np
from tqdm import tqdm

from services.matching.cost import PairCosts, estimate_costs
from services.matching.eligibility import PairEligibility, evaluate_pairs
from services.matching.features import pair_features
from services.matching.model import Scorer
from services.matching.ranking import (
    DEFAULT_TERM_MONTHS,
    MIN_DEFAULT_AMOUNT,
    requested_terms,
    score_pairs,
)
from services.matching.tables import (
    SECTION_LETTERS,
    TOWN_CODES,
    Bools,
    FirmTable,
    Floats,
    Ints,
    ProductTable,
)
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import RankOptions
from shared.schemas.product import ProductFeatures

DEFAULT_CHUNK_FIRMS = 100
_STATED_NEED = RankOptions()  # no override: each firm is ranked for its own stated need


@dataclass(frozen=True)
class Coverage:
    """How many firms of one town (or sector) the catalogue reaches at all."""

    firms: int
    firms_with_eligible: int
    firms_with_need_but_no_eligible: int


@dataclass(frozen=True)
class CoverageStats:
    """Coverage per town code and per industry section letter (only those with firms)."""

    by_town: Mapping[str, Coverage]
    by_section: Mapping[str, Coverage]


@dataclass(frozen=True)
class EligibilityCounts:
    """Eligible products per firm (in input order) and the coverage they add up to."""

    eligible_counts: Ints
    coverage: CoverageStats

    @property
    def firms_without_eligible(self) -> Ints:
        return np.flatnonzero(self.eligible_counts == 0)


@dataclass(frozen=True)
class BatchResult:
    """Top-k products of every firm (row i is the i-th input firm) and coverage statistics.

    ``top_product_ids[i]`` lists product ids best first and ``top_scores[i]`` their scores;
    a firm with fewer than k eligible products is padded with -1 and NaN.
    """

    firm_count: int
    pair_count: int
    eligible_pairs: int
    model_version: str
    is_prior: bool
    top_product_ids: Ints  # firms × k
    top_scores: Floats  # firms × k
    eligible_counts: Ints
    coverage: CoverageStats

    @property
    def firms_without_eligible(self) -> Ints:
        return np.flatnonzero(self.eligible_counts == 0)

    def top(self, firm: int) -> list[tuple[int, float]]:
        """(product id, score) of firm ``firm``'s top products, best first."""
        ids, scores = self.top_product_ids[firm], self.top_scores[firm]
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0]


def requested_columns(firms: FirmTable) -> tuple[Floats, Floats]:
    """Per firm, the amount and term ranking.requested_terms gives it without overrides."""
    default_amount = np.maximum(float(MIN_DEFAULT_AMOUNT), np.floor_divide(firms.revenue, 5.0))
    amount: Floats = np.where(np.isnan(firms.need_amount), default_amount, firms.need_amount)
    term: Floats = np.where(np.isnan(firms.need_term), float(DEFAULT_TERM_MONTHS), firms.need_term)
    return amount, term


def _firm_count(firms: Sequence[FirmFeatures] | FirmTable) -> int:
    return firms.m if isinstance(firms, FirmTable) else len(firms)


def _chunks(
    firms: Sequence[FirmFeatures] | FirmTable, as_of: date, chunk_firms: int, progress: bool
) -> Iterator[tuple[int, FirmTable, Floats, Floats]]:
    """(first firm index, firm table, amounts, terms) per chunk, with a progress bar."""
    if chunk_firms < 1:
        raise ValueError(f"chunk_firms must be at least 1, got {chunk_firms}")
    m = _firm_count(firms)
    with tqdm(total=m, unit="firm", disable=not progress, desc="ranking") as bar:
        for start in range(0, m, chunk_firms):
            stop = min(m, start + chunk_firms)
            if isinstance(firms, FirmTable):
                table = FirmTable(
                    **{f.name: getattr(firms, f.name)[start:stop] for f in fields(firms)}
                )
                amount, term = requested_columns(table)
            else:
                chunk = firms[start:stop]
                table = FirmTable.from_firms(chunk, as_of)
                asked = np.array(
                    [requested_terms(f, _STATED_NEED) for f in chunk], dtype=np.float64
                )
                amount, term = asked[:, 0], asked[:, 1]
            yield start, table, amount, term
            bar.update(stop - start)


def _pairs(firm_count: int, products: ProductTable) -> tuple[Ints, Ints]:
    """Every (firm, product) of a chunk, firm-major: pair k is firm k // n, product k % n."""
    n = products.n
    firm_idx = np.repeat(np.arange(firm_count, dtype=np.int64), n)
    product_idx = np.tile(np.arange(n, dtype=np.int64), firm_count)
    return firm_idx, product_idx


class _CoverageCounter:
    """Adds up per-firm eligible counts by town and by section across chunks."""

    def __init__(self) -> None:
        # columns: firms, firms with an eligible product, firms with a need but none eligible
        self.towns = np.zeros((len(TOWN_CODES), 3), dtype=np.int64)
        self.sections = np.zeros((len(SECTION_LETTERS), 3), dtype=np.int64)

    def add(self, firms: FirmTable, eligible_counts: Ints) -> None:
        reached = eligible_counts > 0
        stranded = ~reached & ~np.isnan(firms.need_amount)
        for totals, codes in ((self.towns, firms.town), (self.sections, firms.section)):
            for column, weights in enumerate((None, reached, stranded)):
                totals[:, column] += np.bincount(
                    codes, weights=weights, minlength=len(totals)
                ).astype(np.int64)

    def stats(self) -> CoverageStats:
        def by(names: Sequence[str], totals: Ints) -> Mapping[str, Coverage]:
            return MappingProxyType(
                {
                    name: Coverage(int(row[0]), int(row[1]), int(row[2]))
                    for name, row in zip(names, totals, strict=True)
                    if row[0] > 0
                }
            )

        return CoverageStats(
            by_town=by(TOWN_CODES, self.towns), by_section=by(SECTION_LETTERS, self.sections)
        )


def eligibility_counts(
    firms: Sequence[FirmFeatures] | FirmTable,
    products: ProductTable,
    *,
    as_of: date,
    chunk_firms: int = DEFAULT_CHUNK_FIRMS,
    progress: bool = False,
) -> EligibilityCounts:
    """Rules only, no model: how many products each firm qualifies for, and coverage.

    For officials' statistics (which towns and sectors the catalogue leaves out); the same
    chunking, so memory is bounded the same way. ``as_of`` dates firm ages when ``firms`` are
    FirmFeatures; a FirmTable carries its own.
    """
    m = _firm_count(firms)
    counts = np.zeros(m, dtype=np.int64)
    coverage = _CoverageCounter()
    for start, table, _, _ in _chunks(firms, as_of, chunk_firms, progress):
        firm_idx, product_idx = _pairs(table.m, products)
        eligible = evaluate_pairs(table, firm_idx, products, product_idx).eligible
        chunk_counts = eligible.reshape(table.m, products.n).sum(axis=1)
        counts[start : start + table.m] = chunk_counts
        coverage.add(table, chunk_counts)
    return EligibilityCounts(eligible_counts=counts, coverage=coverage.stats())


def top_columns(scores: Floats, k: int) -> Ints:
    """Per row, the columns of the k highest finite scores, best first, ties by column.

    The order is that of a stable descending sort (ranking.py's), found with argpartition:
    O(n) per row instead of O(n log n). Rows whose k-th score is tied with one left out fall
    back to the full stable sort, so ties never pick a different product. -inf marks
    "not rankable" and is returned as -1.
    """
    rows, n = scores.shape
    if rows == 0 or k == 0:
        return np.full((rows, k), -1, dtype=np.int64)
    if k >= n:
        picked = np.argsort(-scores, axis=1, kind="stable")
    else:
        picked = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(scores, picked, axis=1)
        kth = values.min(axis=1)
        tied = np.isfinite(kth) & (np.count_nonzero(scores >= kth[:, None], axis=1) > k)
        order = np.lexsort((picked, -values), axis=1)
        picked = np.take_along_axis(picked, order, axis=1)
        if tied.any():
            picked[tied] = np.argsort(-scores[tied], axis=1, kind="stable")[:, :k]
    picked = picked[:, :k].astype(np.int64)
    rankable: Bools = np.isfinite(np.take_along_axis(scores, picked, axis=1))
    out: Ints = np.where(rankable, picked, -1)
    if out.shape[1] < k:
        out = np.pad(out, ((0, 0), (0, k - out.shape[1])), constant_values=-1)
    return out


def rank_batch(
    firms: Sequence[FirmFeatures] | FirmTable,
    products: ProductTable,
    scorer: Scorer,
    *,
    as_of: date,
    top_k: int = 5,
    chunk_firms: int = DEFAULT_CHUNK_FIRMS,
    progress: bool = False,
) -> BatchResult:
    """Every firm's ``top_k`` products, each firm ranked for its stated need (or the default).

    ``as_of`` dates firm ages when ``firms`` are FirmFeatures; a FirmTable carries its own.
    Per chunk: eligibility of every pair, costs and features of the eligible ones, one model
    call, scores, then the top k of each firm.
    """
    if top_k < 0:
        raise ValueError(f"top_k must not be negative, got {top_k}")
    m, n = _firm_count(firms), products.n
    top_ids = np.full((m, top_k), -1, dtype=np.int64)
    top_scores = np.full((m, top_k), np.nan)
    counts = np.zeros(m, dtype=np.int64)
    coverage = _CoverageCounter()
    for start, table, amount, term in _chunks(firms, as_of, chunk_firms, progress):
        c = table.m
        firm_idx, product_idx = _pairs(c, products)
        elig = evaluate_pairs(table, firm_idx, products, product_idx)
        eligible = np.flatnonzero(elig.eligible)
        f, p = firm_idx[eligible], product_idx[eligible]
        costs = estimate_costs(table, f, products, p, amount[f], term[f])
        probability = np.full(len(eligible), np.nan)
        if len(eligible) and not scorer.is_prior:
            subset = PairEligibility(failed=elig.failed[eligible], gap=elig.gap[eligible])
            features = pair_features(table, f, products, p, amount[f], term[f], subset)
            probability = scorer.predict(features)
        pair_scores = np.full(c * n, -np.inf)  # -inf: not eligible, never ranked
        pair_scores[eligible] = score_pairs(probability, costs, scorer.is_prior)
        scores = pair_scores.reshape(c, n)
        rows = slice(start, start + c)
        if n:
            picked = top_columns(scores, top_k)
            found = picked >= 0
            safe = np.where(found, picked, 0)
            top_ids[rows] = np.where(found, products.ids[safe], -1)
            top_scores[rows] = np.where(found, np.take_along_axis(scores, safe, axis=1), np.nan)
        chunk_counts = np.bincount(f, minlength=c).astype(np.int64)
        counts[rows] = chunk_counts
        coverage.add(table, chunk_counts)
    return BatchResult(
        firm_count=m,
        pair_count=m * n,
        eligible_pairs=int(counts.sum()),
        model_version=scorer.version,
        is_prior=scorer.is_prior,
        top_product_ids=top_ids,
        top_scores=top_scores,
        eligible_counts=counts,
        coverage=coverage.stats(),
    )


@dataclass(frozen=True)
class NewlyQualified:
    """The firms (indices into the input) that qualify for ``after`` but did not for ``before``,
    with the approval probability (NaN under the prior) and the costs of each, in input order."""

    firms: Ints
    probability: Floats
    costs: PairCosts


def qualifying(firms: FirmTable, product: ProductFeatures) -> tuple[Bools, PairCosts]:
    """Per firm: whether the product admits it and can lend it something for its stated need
    (the rules, then an offer of at least the product's minimum), and the costs of each pair."""
    products = ProductTable.from_products([product])
    firm_idx = np.arange(firms.m, dtype=np.int64)
    product_idx = np.zeros(firms.m, dtype=np.int64)
    amount, term = requested_columns(firms)
    eligible = evaluate_pairs(firms, firm_idx, products, product_idx).eligible
    costs = estimate_costs(firms, firm_idx, products, product_idx, amount, term)
    qualifies: Bools = eligible & (costs.offer_amount > 0)
    return qualifies, costs


def newly_qualified(
    firms: FirmTable, before: ProductFeatures | None, after: ProductFeatures, scorer: Scorer
) -> NewlyQualified:
    """Proactive matching: who a product's listing (``before`` None) or change newly reaches.

    The same rules, costs, features and model as ranking, for each firm's stated need.
    """
    now, costs = qualifying(firms, after)
    if before is not None:
        then, _ = qualifying(firms, before)
        now &= ~then
    picked = np.flatnonzero(now)
    chosen = PairCosts(**{f.name: getattr(costs, f.name)[picked] for f in fields(PairCosts)})
    probability = np.full(len(picked), np.nan)
    if len(picked) and not scorer.is_prior:
        products = ProductTable.from_products([after])
        product_idx = np.zeros(len(picked), dtype=np.int64)
        amount, term = requested_columns(firms)
        elig = evaluate_pairs(firms, picked, products, product_idx)
        features = pair_features(
            firms, picked, products, product_idx, amount[picked], term[picked], elig
        )
        probability = scorer.predict(features)
    return NewlyQualified(firms=picked, probability=probability, costs=chosen)
