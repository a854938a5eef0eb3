"""Tests generated from the criterion registry: every entry, at its boundary and one unit past.

For each criterion a firm exactly at the product's setting is eligible and told how it meets
it; a firm one unit short (one unit over, for a maximum; one day, for an age) is not, and its
near miss carries the exact gap and a message in Chinese and English. The what-if takes
exactly the criteria the registry marks.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.matching.explain import rule_reasons, unmet_criteria
from services.matching.firm_columns import FirmColumns
from services.matching.model import PriorModel
from services.matching.policy import Population, changed_products, what_if
from services.matching.ranking import rank_products_for_firm
from services.matching.tables import VOCABULARIES, ProductTable
from shared.criteria import (
    CRITERIA,
    WHAT_IF,
    Comparison,
    Criterion,
    Reading,
    Unit,
    rating_rank,
)
from shared.enums import CreditRating
from shared.errors import Unprocessable
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import Lang, RankOptions
from shared.schemas.policy import WhatIfRequest
from shared.schemas.product import Eligibility, ProductFeatures
from tests.matching.helpers import AS_OF, firm, one_pair, product

LANGS: tuple[Lang, ...] = ("zh", "en")
_RATINGS = list(CreditRating)  # best first
# A code outside each list criterion's example, and a firm whose fields agree with it.
_OUTSIDE: dict[Unit, dict[str, Any]] = {
    Unit.TOWN: {"town_code": "441900116"},  # 塘厦镇, not 松山湖
    Unit.SECTION: {"industry_section": "F", "industry_division": 51},
    Unit.SIZE: {"size_class": "medium"},
}
_INSIDE: dict[Unit, dict[str, Any]] = {
    Unit.TOWN: {"town_code": "441900401"},
    Unit.SECTION: {"industry_section": "C", "industry_division": 39},
    Unit.SIZE: {"size_class": "small"},
}


def _founded_years_ago(years: int, days: int = 0) -> dict[str, Any]:
    """Founded on the ``years``-th anniversary before AS_OF, moved by ``days`` (+ younger)."""
    anniversary = AS_OF.replace(year=AS_OF.year - years)
    return {"established_on": anniversary + timedelta(days=days)}


def calendar_age(founded: date, on: date) -> float:
    """Age by the calendar, counted here independently: anniversaries passed, then the share
    of the year to the next one (the test dates avoid 29 February)."""
    passed = on.year - founded.year - ((on.month, on.day) < (founded.month, founded.day))
    last = founded.replace(year=founded.year + passed)
    following = founded.replace(year=founded.year + passed + 1)
    return passed + (on - last).days / (following - last).days


def boundary_firm(criterion: Criterion, past: bool) -> FirmFeatures:
    """A firm exactly at ``criterion.example``, or (``past``) one unit on the failing side."""
    setting = criterion.example
    if criterion.is_list:
        assert _INSIDE[criterion.unit][criterion.firm_fields[0]] in setting
        return firm(**(_OUTSIDE if past else _INSIDE)[criterion.unit])
    if criterion.compare is Comparison.REQUIRED:
        holds = not past
        field = criterion.firm_fields[0]
        if criterion.reading is Reading.LACKS:
            return firm(**{field: not holds})
        return firm(
            **{field: (1_000_000 if holds else 0) if criterion.unit is Unit.YUAN else holds}
        )
    if criterion.compare is Comparison.RATING:
        index = _RATINGS.index(CreditRating(setting)) + (1 if past else 0)  # one notch worse
        return firm(credit_rating=_RATINGS[index].value)
    at_most = criterion.compare is Comparison.AT_MOST
    step = 1 if at_most else -1
    if criterion.reads_age:
        # On the anniversary exactly; one day past it is one day older (at most) or younger.
        return firm(**_founded_years_ago(setting, (-step if past else 0)))
    value = setting + (step if past else 0)
    fields = dict.fromkeys(criterion.firm_fields, 0) | {criterion.firm_fields[0]: value}
    return firm(**fields)


def expected_gap(criterion: Criterion, the_firm: FirmFeatures) -> float | None:
    """The gap from the firm's own fields, computed here independently of matching."""
    if not criterion.is_numeric:
        return None
    if criterion.compare is Comparison.RATING:
        return float(rating_rank(criterion.example) - rating_rank(the_firm.credit_rating))
    if criterion.reads_age:
        actual = calendar_age(the_firm.established_on, AS_OF)
    else:
        actual = float(sum(getattr(the_firm, name) for name in criterion.firm_fields))
    setting = float(criterion.example)
    return actual - setting if criterion.compare is Comparison.AT_MOST else setting - actual


def the_product(criterion: Criterion) -> ProductFeatures:
    return product(**{criterion.code: criterion.example})


IDS = [c.code for c in CRITERIA]


@pytest.mark.parametrize("criterion", CRITERIA, ids=IDS)
def test_a_firm_at_the_boundary_is_eligible_and_told_why(criterion: Criterion) -> None:
    pair = one_pair(boundary_firm(criterion, past=False), the_product(criterion))
    assert pair.elig.eligible.tolist() == [True]
    for lang in LANGS:
        reasons = rule_reasons(pair.elig, 0, pair.firms, 0, pair.products, 0, lang)
        [reason] = [r for r in reasons if r.code == criterion.code]
        assert reason.message
        assert "{" not in reason.message


@pytest.mark.parametrize("criterion", CRITERIA, ids=IDS)
def test_one_unit_past_the_boundary_is_a_near_miss_with_the_exact_gap(
    criterion: Criterion,
) -> None:
    the_firm = boundary_firm(criterion, past=True)
    products = ProductTable.from_products([the_product(criterion)])
    messages = {}
    for lang in LANGS:
        answer = rank_products_for_firm(
            the_firm, products, PriorModel(), RankOptions(lang=lang), as_of=AS_OF
        )
        assert answer.eligible == 0
        [near_miss] = answer.near_misses
        [unmet] = near_miss.unmet
        assert (unmet.code, unmet.actionable) == (criterion.code, criterion.actionable)
        gap = expected_gap(criterion, the_firm)
        if gap is None:
            assert unmet.gap is None
        else:
            assert unmet.gap == pytest.approx(gap, rel=1e-12, abs=0)
            assert unmet.gap > 0
        assert unmet.message
        assert "{" not in unmet.message
        messages[lang] = unmet.message
    assert messages["zh"] != messages["en"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in messages["zh"])


@pytest.mark.parametrize("criterion", [c for c in CRITERIA if c.is_numeric], ids=lambda c: c.code)
def test_numeric_messages_quote_the_setting_and_its_unit(criterion: Criterion) -> None:
    pair = one_pair(boundary_firm(criterion, past=True), the_product(criterion))
    [zh] = unmet_criteria(pair.elig, 0, pair.firms, 0, pair.products, 0, "zh")
    [en] = unmet_criteria(pair.elig, 0, pair.firms, 0, pair.products, 0, "en")
    units_zh = {Unit.YEARS: "年", Unit.YUAN: "元", Unit.USD: "US$", Unit.COUNT: "", Unit.RATING: ""}
    assert units_zh[criterion.unit] in zh.message
    if criterion.unit is Unit.YEARS:
        assert "year" in en.message
    if criterion.unit is Unit.YUAN:
        assert "¥" in en.message


@pytest.mark.parametrize("criterion", CRITERIA, ids=IDS)
def test_the_policy_masks_hold_each_boundary_as_ranking_does(criterion: Criterion) -> None:
    """Coverage, what-if and reach evaluate rules as masks over columns: a firm exactly at
    the setting passes, one unit past it does not."""
    columns = FirmColumns.from_firms(
        [boundary_firm(criterion, past=True), boundary_firm(criterion, past=False)], [True] * 2
    )
    columns.date_to(AS_OF)
    products = ProductTable.from_products([the_product(criterion)])
    assert Population(columns).eligible(products, 0).tolist() == [False, True]


@pytest.mark.parametrize("criterion", CRITERIA, ids=IDS)
def test_the_what_if_takes_exactly_the_criteria_the_registry_marks(criterion: Criterion) -> None:
    body = {"category": "guaranteed", "value": None}
    if criterion.what_if is None:
        with pytest.raises(ValidationError, match="criterion"):
            WhatIfRequest.model_validate(body | {"criterion": criterion.code})
        return
    assert WhatIfRequest.model_validate(body | {"criterion": criterion.what_if}).criterion
    # Moving the setting one unit towards the firm that was short admits exactly that firm.
    short = boundary_firm(criterion, past=True)
    at = boundary_firm(criterion, past=False)
    columns = FirmColumns.from_firms([short, at], [True, True])
    columns.date_to(AS_OF)
    if criterion.is_list:
        vocabulary = VOCABULARIES[criterion.unit]
        outside = str(_OUTSIDE[criterion.unit][criterion.firm_fields[0]])
        assert outside in vocabulary
        value: Any = [*criterion.example, outside]
    else:
        step = 1 if criterion.compare is Comparison.AT_MOST else -1
        value = criterion.example + step
    result = what_if(Population(columns), [the_product(criterion)], criterion.what_if, value)
    assert (result.baseline_eligible, result.changed_eligible) == (1, 2)
    assert (result.newly_qualifying, result.no_longer_qualifying) == (1, 0)


def test_every_criterion_has_its_product_field_and_reads_real_firm_fields() -> None:
    assert set(Eligibility.model_fields) == {c.code for c in CRITERIA}
    for criterion in CRITERIA:
        assert set(criterion.firm_fields) <= set(FirmFeatures.model_fields)
        assert Eligibility.model_fields[criterion.code].description == criterion.description
    assert set(WHAT_IF) == {c.what_if for c in CRITERIA if c.what_if is not None}


def test_minimum_and_maximum_of_one_value_are_checked_against_each_other() -> None:
    with pytest.raises(ValidationError, match="max_years_established"):
        product(min_years_established=6, max_years_established=5)
    with pytest.raises(ValidationError, match="max_revenue_yuan"):
        product(min_revenue_yuan=6, max_revenue_yuan=5)
    assert product(min_years_established=5, max_years_established=5).max_years_established == 5


@pytest.mark.parametrize("criterion", [c for c in CRITERIA if c.what_if], ids=lambda c: c.code)
def test_the_what_if_takes_the_product_fields_name_too(criterion: Criterion) -> None:
    by_field = WhatIfRequest(category="ip_pledge", criterion=criterion.code, value=None)
    by_name = WhatIfRequest(category="ip_pledge", criterion=criterion.what_if, value=None)
    assert by_field.criterion == by_name.criterion == criterion.what_if


def test_a_what_if_that_inverts_a_products_range_says_so_once_and_names_the_product() -> None:
    startup = product(max_years_established=5, name="天使贷")
    with pytest.raises(Unprocessable) as raised:
        changed_products([startup], "min_years", 6)
    message = raised.value.detail
    assert raised.value.field == "value"
    assert f"product {startup.id} (天使贷)" in message
    assert message.count("is greater than") == 1
