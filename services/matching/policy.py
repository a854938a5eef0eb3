"""Officials' policy questions answered by the eligibility rules over the registered firms.

- Coverage: where firms state a need that no active product's rules admit.
- What-if: change one eligibility criterion of a product (or of every product of a category)
  and count the firms that would newly qualify for it, without changing any product. The
  criteria it may change, and their names, are those the criterion registry marks.

Both run the same vectorised rules as ranking (eligibility.evaluate_pairs) over every firm in
chunks, so the answer is exactly what matching would say, firm by firm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from pydantic import ValidationError

from services.matching.batch import eligibility_counts, requested_columns
from services.matching.eligibility import evaluate_pairs
from services.matching.features import pair_features
from services.matching.model import Scorer
from services.matching.tables import SECTION_LETTERS, SIZE_CLASSES, TOWN_CODES, FirmTable, Ints
from services.matching.tables import ProductTable as Products
from shared.criteria import CRITERIA, WHAT_IF, is_set, next_step
from shared.errors import Unprocessable
from shared.schemas.product import ProductFeatures
from shared.vocab.labels import section_label, size_class_label, town_label

MIN_CELL_FIRMS = 3


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


def _any_eligible(firms: FirmTable, products: Sequence[ProductFeatures], as_of: date) -> Any:
    counts = eligibility_counts(firms, Products.from_products(products), as_of=as_of)
    return counts.eligible_counts > 0


def _cells(keys: Ints, mask: Any, names: Sequence[str], label: Any) -> list[dict[str, Any]]:
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
    firms: FirmTable,
    products: Sequence[ProductFeatures],
    criterion: str,
    value: Any,
    as_of: date,
) -> WhatIf:
    """Firms eligible for at least one of ``products`` now, and once the criterion changes."""
    changed = changed_products(products, criterion, value)
    if firms.m == 0:
        before = after = np.zeros(0, dtype=np.bool_)
    else:
        before = _any_eligible(firms, products, as_of)
        after = _any_eligible(firms, changed, as_of)
    newly = after & ~before
    need = np.nan_to_num(firms.need_amount[newly], nan=0.0)
    return WhatIf(
        firms_considered=firms.m,
        baseline_eligible=int(before.sum()),
        changed_eligible=int(after.sum()),
        newly_qualifying=int(newly.sum()),
        no_longer_qualifying=int((before & ~after).sum()),
        requested_amount_yuan=int(need.sum()),
        by_industry=_cells(firms.section, newly, SECTION_LETTERS, section_label),
        by_size_class=_cells(firms.size, newly, SIZE_CLASSES, size_class_label),
    )


def coverage_gaps(
    firms: FirmTable, products: Sequence[ProductFeatures], as_of: date
) -> list[dict[str, Any]]:
    """Per town and industry section: firms with a stated need, and those no product admits."""
    if firms.m == 0:
        return []
    if products:
        eligible = _any_eligible(firms, products, as_of)
    else:
        eligible = np.zeros(firms.m, dtype=np.bool_)
    needs = ~np.isnan(firms.need_amount)
    cell = firms.town * len(SECTION_LETTERS) + firms.section
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
    by_town: list[dict[str, Any]]
    by_size_class: list[dict[str, Any]]
    criteria: list[dict[str, Any]]


def _count(n: int) -> int | None:
    """A count of firms as an answer may show it: withheld (None) when 1 or 2."""
    return None if 0 < n < MIN_CELL_FIRMS else n


def reach(firms: FirmTable, product: ProductFeatures, scorer: Scorer) -> Reach:
    """Whom a product (listed or a draft) would reach among ``firms`` (those that consented
    to matching and stated a need): eligible firms by town and size class; for each rule it
    sets, how many more one notch easier (shared.criteria.next_step) would admit; and the
    model's mean approval probability among the eligible (None under the rule-only prior).

    The same vectorised rules as ranking and the what-if; aggregates only, groups of fewer
    than MIN_CELL_FIRMS firms withheld, never a firm id.
    """
    if firms.m == 0:
        return Reach(0, 0, None, [], [], [])
    eligible = _eligible(firms, product)
    count = int(eligible.sum())
    share = None
    if count and not scorer.is_prior:
        picked = np.flatnonzero(eligible)
        table = Products.from_products([product])
        product_idx = np.zeros(len(picked), dtype=np.int64)
        amount, term = requested_columns(firms)
        elig = evaluate_pairs(firms, picked, table, product_idx)
        features = pair_features(
            firms, picked, table, product_idx, amount[picked], term[picked], elig
        )
        share = round(float(np.mean(scorer.predict(features))), 4)
    criteria = []
    for criterion in CRITERIA:
        setting = getattr(product, criterion.product_field)
        if not is_set(criterion, setting):
            continue
        relaxed_to = next_step(criterion, setting)
        easier = ProductFeatures.model_validate(
            product.model_dump() | {criterion.product_field: relaxed_to}
        )
        more = int((_eligible(firms, easier) & ~eligible).sum())
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
        expected_approval_share=share if count >= MIN_CELL_FIRMS else None,
        by_town=_cells(firms.town, eligible, TOWN_CODES, town_label),
        by_size_class=_cells(firms.size, eligible, SIZE_CLASSES, size_class_label),
        criteria=criteria,
    )


def _eligible(firms: FirmTable, product: ProductFeatures) -> Any:
    table = Products.from_products([product])
    firm_idx = np.arange(firms.m, dtype=np.int64)
    return evaluate_pairs(firms, firm_idx, table, np.zeros(firms.m, dtype=np.int64)).eligible


def _plain(value: Any) -> Any:
    """A setting as JSON shows it (enums as their values)."""
    if isinstance(value, list):
        return [getattr(v, "value", v) for v in value]
    return getattr(value, "value", value)
