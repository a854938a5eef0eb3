"""Officials' policy questions answered by the eligibility rules over the registered firms.

- Coverage: where firms state a need that no active product's rules admit.
- What-if: change one eligibility criterion of a product (or of every product of a category)
  and count the firms that would newly qualify for it, without changing any product. The
  criteria it may change, and their names, are those the criterion registry marks.

- Reach: whom one product (listed or a draft) admits, how many more each rule one notch
  easier would admit, and the model's mean approval probability among the admitted (over a
  uniform sample of them, its 99.9% margin stated, when they are more than SHARE_SAMPLE_FIRMS).

All three read the registered firms as columns (firm_columns.FirmColumns, kept in step with the
registry) and evaluate a product's rules as boolean masks over whole columns, one criterion at
a time: a firm passes a rule exactly when eligibility.evaluate_pairs says it does (the same
settings from ProductTable, the same firm values from the criterion registry, the same
comparison read off ``shortfall``), so the answer is what matching would say, firm by firm.
Counts by town, section and size class are bincounts over the masks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from services.matching.batch import requested_columns
from services.matching.eligibility import evaluate_pairs
from services.matching.features import pair_features
from services.matching.firm_columns import Column, FirmColumns
from services.matching.model import FAST_PATH_MAX_ROWS, Scorer
from services.matching.tables import (
    SECTION_LETTERS,
    SIZE_CLASSES,
    TOWN_CODES,
    Bools,
    Floats,
    Ints,
)
from services.matching.tables import ProductTable as Products
from shared.criteria import CRITERIA, WHAT_IF, is_set, next_step, shortfall
from shared.errors import Unprocessable
from shared.schemas.product import ProductFeatures
from shared.vocab.labels import section_label, size_class_label, town_label

MIN_CELL_FIRMS = 3
# The model scores a reach's firms this many at a time: calls of this size take the model's
# own numpy path (model.FAST_PATH_MAX_ROWS), the same probabilities as scikit-learn's. Larger
# calls go to scikit-learn, whose boosted trees run an OpenMP region per tree: on the 2 shared
# cores at load average 9, 20,000 rows took 1,344 ms on 2 OpenMP threads, 107 ms on one, and
# 64 ms in chunks of 4,096 on the numpy path.
SCORE_CHUNK_FIRMS = FAST_PATH_MAX_ROWS
# Above this many eligible firms, reach's expected approval share is the mean over a uniform
# sample of this many (the same sample for the same eligible firms: a fixed seed), with its
# 99.9% margin. Scoring every one of 1,000,000 eligible firms took 2.3 s (logistic) and 2.6 s
# (100 boosted trees) on the loaded 2-core machine, the sample 25-55 ms; the margin is about
# ±0.003 (3.29 × σ / √20,000, σ ≈ 0.15; ±0.012 at worst, σ = 0.5). 99.9%, not 95%: the answer
# says "within ± this", and with a fixed seed a bad sample would stay bad for that question.
SHARE_SAMPLE_FIRMS = 20_000
SHARE_SAMPLE_SEED = 14
SHARE_Z = 3.290527  # the normal quantile of a two-sided 99.9% interval
MAX_CACHED_MASKS = 32  # one rule's pass mask is m bytes; a population keeps this many
# Per criterion: whether it fails above the setting (a maximum) rather than below it, read off
# shortfall itself as eligibility.py does; a list criterion is checked by membership instead.
_FAILS_ABOVE = tuple(bool(shortfall(c, 1.0, 0.0) > 0) for c in CRITERIA)


class Population:
    """Some registered firms (all, or the given rows of the columns) and, over them, each
    product rule as a mask of the firms that pass it."""

    def __init__(self, columns: FirmColumns, rows: Ints | None = None) -> None:
        self.columns = columns
        self.rows = rows
        self.m = columns.m if rows is None else len(rows)
        self._gathered: dict[str, Column] = {}
        self._values: dict[int, Column] = {}
        self._passes: dict[tuple[int, Any], Bools] = {}

    def column(self, name: str) -> Column:
        """A kept column over these firms (a view for all firms, a copy for chosen rows)."""
        if name not in self._gathered:
            self._gathered[name] = self.columns.field(name, self.rows)
        return self._gathered[name]

    def _criterion_values(self, c: int) -> Column:
        if c not in self._values:
            criterion = CRITERIA[c]
            if criterion.is_list:
                self._values[c] = self.column(criterion.firm_fields[0])
            else:
                self._values[c] = self.columns.criterion_values(criterion, self.rows)
        return self._values[c]

    def _pass(self, c: int, setting: Any) -> Bools:
        key = (c, setting)
        mask = self._passes.get(key)
        if mask is None:
            values = self._criterion_values(c)
            if CRITERIA[c].is_list:
                mask = np.asarray(setting)[values]  # allowed codes, indexed by each firm's
            elif _FAILS_ABOVE[c]:
                mask = np.less_equal(values, setting)
            else:
                mask = np.greater_equal(values, setting)
            if len(self._passes) >= MAX_CACHED_MASKS:
                del self._passes[next(iter(self._passes))]
            self._passes[key] = mask
        return mask

    def eligible(self, products: Products, j: int) -> Bools:
        """The firms that meet every rule product ``j`` sets (evaluate_pairs' ``eligible``)."""
        if (products.verified_only[j] & ~self.columns.verified).any():
            # A rule accepted only from a register that is not published: nobody meets it.
            return np.zeros(self.m, dtype=np.bool_)
        out = np.ones(self.m, dtype=np.bool_)
        for c, criterion in enumerate(CRITERIA):
            setting = float(products.settings[j, c])
            if np.isnan(setting):  # not set: fails nobody
                continue
            if criterion.is_list:
                allowed = products.allowed[criterion.code][j]
                out &= self._pass(c, tuple(allowed.tolist()))
            else:
                out &= self._pass(c, setting)
        return out

    def any_eligible(self, products: Sequence[ProductFeatures]) -> Bools:
        """The firms eligible for at least one of ``products``."""
        table = Products.from_products(products)
        out = np.zeros(self.m, dtype=np.bool_)
        for j in range(table.n):
            out |= self.eligible(table, j)
        return out


def population(
    columns: FirmColumns, town_code: str | None, *, reachable: bool = False
) -> Population:
    """The firms of a town (or all); ``reachable``: only those that consented to matching
    and stated a need (whom a product could reach)."""
    if town_code is None and not reachable:
        return Population(columns)
    keep = np.ones(columns.m, dtype=np.bool_)
    if town_code is not None:
        keep &= columns.data["town_code"] == TOWN_CODES.index(town_code)
    if reachable:
        keep &= columns.data["consent_matching"]
        keep &= ~np.isnan(columns.data["need_amount_yuan"])
    return Population(columns, np.flatnonzero(keep))


def changed_products(
    products: Sequence[ProductFeatures], criterion: str, value: Any
) -> list[ProductFeatures]:
    """The products with the criterion set to ``value`` (None removes a threshold).

    The new value goes through the same validation as a product listed over the API, so an
    impossible value (a negative threshold, an unknown size class) is a 422 naming ``value``.
    """
    entry = WHAT_IF[criterion]  # ``criterion`` is the what-if's name for it
    if entry.is_list and value is None:
        value = []
    if not entry.is_list and isinstance(value, list):
        raise Unprocessable(f"{criterion} takes a number or null", field="value")
    if entry.is_list and not isinstance(value, list):
        raise Unprocessable(f"{criterion} takes a list", field="value")
    field = entry.product_field
    if isinstance(value, float) and value.is_integer():
        # The question's threshold is a JSON number (5 or 5.0); the product's integer fields
        # are strict, so a whole number is given as an int (5.5 stays a 422 naming value).
        value = int(value)
    out = []
    for product in products:
        data = product.model_dump() | {field: value}
        try:
            out.append(ProductFeatures.model_validate(data))
        except ValidationError as exc:
            # A range names both its ends, each with the same message: say it once, and say
            # which product of the category it is.
            message = "; ".join(dict.fromkeys(str(e["msg"]) for e in exc.errors()))
            raise Unprocessable(
                f"{criterion} for product {product.id} ({product.name}): {message}", field="value"
            ) from exc
    return out


def _cells(keys: Column, mask: Any, names: Sequence[str], label: Any) -> list[dict[str, Any]]:
    counts = np.bincount(keys[mask], minlength=len(names))
    rows: list[dict[str, Any]] = []
    for index in np.flatnonzero(counts).tolist():
        key = str(names[index])
        zh, en = label(key)
        firms = int(counts[index])
        suppressed = firms < MIN_CELL_FIRMS
        rows.append(
            {
                "key": key,
                "label_zh": zh,
                "label_en": en,
                "firms": None if suppressed else firms,
                "suppressed": suppressed,
            }
        )
    rows.sort(key=lambda r: (bool(r["suppressed"]), -int(r["firms"] or 0), str(r["key"])))
    return rows


@dataclass(frozen=True)
class WhatIf:
    firms_considered: int
    baseline_eligible: int
    changed_eligible: int
    newly_qualifying: int
    no_longer_qualifying: int
    requested_amount_yuan: int
    by_industry: list[dict[str, Any]]
    by_size_class: list[dict[str, Any]]


def what_if(
    firms: Population, products: Sequence[ProductFeatures], criterion: str, value: Any
) -> WhatIf:
    """Firms eligible for at least one of ``products`` now, and once the criterion changes."""
    changed = changed_products(products, criterion, value)
    before = firms.any_eligible(products)
    after = firms.any_eligible(changed)
    newly = after & ~before
    need = np.nan_to_num(firms.column("need_amount_yuan")[newly], nan=0.0)
    return WhatIf(
        firms_considered=firms.m,
        baseline_eligible=int(before.sum()),
        changed_eligible=int(after.sum()),
        newly_qualifying=int(newly.sum()),
        no_longer_qualifying=int((before & ~after).sum()),
        requested_amount_yuan=int(need.sum()),
        by_industry=_cells(firms.column("industry_section"), newly, SECTION_LETTERS, section_label),
        by_size_class=_cells(firms.column("size_class"), newly, SIZE_CLASSES, size_class_label),
    )


def coverage_gaps(firms: Population, products: Sequence[ProductFeatures]) -> list[dict[str, Any]]:
    """Per town and industry section: firms with a stated need, and those no product admits."""
    if firms.m == 0:
        return []
    eligible = firms.any_eligible(products)
    needs = ~np.isnan(firms.column("need_amount_yuan"))
    towns = firms.column("town_code").astype(np.int64)
    cell = towns * len(SECTION_LETTERS) + firms.column("industry_section")
    size = len(TOWN_CODES) * len(SECTION_LETTERS)
    with_need = np.bincount(cell[needs], minlength=size)
    stranded = np.bincount(cell[needs & ~eligible], minlength=size)
    rows: list[dict[str, Any]] = []
    for index in np.flatnonzero(with_need).tolist():
        town_index, section_index = divmod(int(index), len(SECTION_LETTERS))
        town, section = TOWN_CODES[town_index], SECTION_LETTERS[section_index]
        town_zh, town_en = town_label(town)
        section_zh, section_en = section_label(section)
        suppressed = int(with_need[index]) < MIN_CELL_FIRMS
        rows.append(
            {
                "town_code": town,
                "town_zh": town_zh,
                "town_en": town_en,
                "industry_section": section,
                "section_zh": section_zh,
                "section_en": section_en,
                "firms_with_need": None if suppressed else int(with_need[index]),
                "firms_with_need_no_eligible": None if suppressed else int(stranded[index]),
                "suppressed": suppressed,
            }
        )
    rows.sort(key=lambda r: (bool(r["suppressed"]), -int(r["firms_with_need_no_eligible"] or 0)))
    return rows


@dataclass(frozen=True)
class Reach:
    firms_considered: int
    eligible: int | None
    expected_approval_share: float | None
    # ± this much (99.9%) around the share: 0.0 when every eligible firm was scored.
    expected_approval_share_margin: float | None
    expected_approval_share_scored: int | None  # eligible firms the model scored
    by_town: list[dict[str, Any]]
    by_size_class: list[dict[str, Any]]
    criteria: list[dict[str, Any]]


def _count(n: int) -> int | None:
    """A count of firms as an answer may show it: withheld (None) when 1 or 2."""
    return None if 0 < n < MIN_CELL_FIRMS else n


def reach(firms: Population, product: ProductFeatures, scorer: Scorer) -> Reach:
    """Whom a product (listed or a draft) would reach among ``firms`` (those that consented
    to matching and stated a need): eligible firms by town and size class; for each rule it
    sets, how many more one notch easier (shared.criteria.next_step) would admit; and the
    model's mean approval probability among the eligible (None under the rule-only prior;
    see approval_share for when it is a sample's, with its margin).

    The same rules as ranking and the what-if; aggregates only, groups of fewer than
    MIN_CELL_FIRMS firms withheld, never a firm id.
    """
    if firms.m == 0:
        return Reach(0, 0, None, None, None, [], [], [])
    eligible = firms.eligible(Products.from_products([product]), 0)
    count = int(eligible.sum())
    share = None
    if count >= MIN_CELL_FIRMS and not scorer.is_prior:
        share = approval_share(firms, eligible, product, scorer)
    criteria = []
    for criterion in CRITERIA:
        setting = getattr(product, criterion.product_field)
        if not is_set(criterion, setting):
            continue
        relaxed_to = next_step(criterion, setting)
        easier = ProductFeatures.model_validate(
            product.model_dump() | {criterion.product_field: relaxed_to}
        )
        more = int((firms.eligible(Products.from_products([easier]), 0) & ~eligible).sum())
        zh, en = criterion.label
        criteria.append(
            {
                "criterion": criterion.code,
                "label_zh": zh,
                "label_en": en,
                "setting": _plain(setting),
                "relaxed_to": _plain(relaxed_to),
                "additional_firms": _count(more),
                "binding": more > 0,
                "suppressed": 0 < more < MIN_CELL_FIRMS,
            }
        )
    criteria.sort(key=lambda c: (not c["binding"], -(c["additional_firms"] or 0)))
    return Reach(
        firms_considered=firms.m,
        eligible=_count(count),
        expected_approval_share=None if share is None else round(share.mean, 4),
        # Rounded up, and widened by the share's own rounding (half its last digit), so that
        # the shown share ± the shown margin still holds the 99.9% interval.
        expected_approval_share_margin=None
        if share is None
        else (math.ceil((share.margin + 0.00005) * 1e4) / 1e4 if share.margin else 0.0),
        expected_approval_share_scored=None if share is None else share.scored,
        by_town=_cells(firms.column("town_code"), eligible, TOWN_CODES, town_label),
        by_size_class=_cells(firms.column("size_class"), eligible, SIZE_CLASSES, size_class_label),
        criteria=criteria,
    )


@dataclass(frozen=True)
class ApprovalShare:
    mean: float  # the mean approval probability of the scored firms
    margin: float  # 99.9% half-width of that mean as an estimate of all eligible firms' mean
    scored: int


def approval_share(
    firms: Population, eligible: Bools, product: ProductFeatures, scorer: Scorer
) -> ApprovalShare:
    """The model's mean approval probability over the eligible firms: every one of them, or,
    above SHARE_SAMPLE_FIRMS, a uniform sample of them drawn without replacement.

    A sample's margin is the normal 99.9% interval of a mean drawn without replacement: z × s /
    √n × √((N − n) / (N − 1)), s the sample's standard deviation (the probabilities are
    bounded in [0, 1], so the mean of 20,000 is as normal as it gets)."""
    picked = np.flatnonzero(eligible)
    population_size = len(picked)
    if population_size > SHARE_SAMPLE_FIRMS:
        rng = np.random.default_rng(SHARE_SAMPLE_SEED)
        chosen = rng.choice(population_size, SHARE_SAMPLE_FIRMS, replace=False, shuffle=False)
        picked = picked[np.sort(chosen)]  # in row order: the gathers read forward
    probabilities = _probabilities(firms, picked, product, scorer)
    n = len(picked)
    margin = 0.0
    if n < population_size:
        spread = float(np.std(probabilities, ddof=1))
        margin = (
            SHARE_Z
            * spread
            / math.sqrt(n)
            * math.sqrt((population_size - n) / (population_size - 1))
        )
    return ApprovalShare(float(np.mean(probabilities)), margin, n)


def _probabilities(
    firms: Population, picked: Ints, product: ProductFeatures, scorer: Scorer
) -> Floats:
    """The model's approval probability for the given firms (positions in ``firms``), scored
    a chunk at a time so that the feature rows in memory are bounded by SCORE_CHUNK_FIRMS.
    Straight from the columns: no per-firm object is built."""
    rows = picked if firms.rows is None else firms.rows[picked]
    table = Products.from_products([product])
    out = np.empty(len(rows), dtype=np.float64)
    for start in range(0, len(rows), SCORE_CHUNK_FIRMS):
        chunk = firms.columns.firm_table(rows[start : start + SCORE_CHUNK_FIRMS])
        firm_idx = np.arange(chunk.m, dtype=np.int64)
        product_idx = np.zeros(chunk.m, dtype=np.int64)
        amount, term = requested_columns(chunk)
        elig = evaluate_pairs(chunk, firm_idx, table, product_idx)
        features = pair_features(chunk, firm_idx, table, product_idx, amount, term, elig)
        out[start : start + chunk.m] = scorer.predict(features)
    return out


def _plain(value: Any) -> Any:
    """A setting as JSON shows it (enums as their values)."""
    if isinstance(value, list):
        return [getattr(v, "value", v) for v in value]
    return getattr(value, "value", value)
