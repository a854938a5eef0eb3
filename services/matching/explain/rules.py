"""Rule reasons and near misses: each criterion worded as its registry entry says, with the
firm's and the product's own numbers, so every message quantifies what it claims."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from services.matching.eligibility import ACTIONABLE, PairEligibility
from services.matching.explain import words
from services.matching.tables import VOCABULARIES, Bools, FirmTable, Ints, ProductTable
from shared.criteria import CRITERIA, CRITERIA_BY_CODE, Comparison, Criterion, Unit
from shared.schemas.matching import Lang, Reason, UnmetCriterion
from shared.schemas.registers import REGISTER_LABELS

_COLUMN = {c.code: i for i, c in enumerate(CRITERIA)}
# Most specific first: a threshold the firm clears says more than the town it happens to be in.
MET_ORDER: tuple[str, ...] = tuple(c.code for c in sorted(CRITERIA, key=lambda c: c.met_rank))
_MET_COLUMNS = np.array([_COLUMN[code] for code in MET_ORDER])

_PRINT: dict[Unit, Callable[[float, Lang], str]] = {
    Unit.YUAN: words.format_yuan,
    Unit.USD: words.format_usd,
    Unit.COUNT: words.num,
    Unit.YEARS: words.years_text,
}
_NAME: dict[Unit, Callable[[str, Lang], str]] = {
    Unit.TOWN: words.town,
    Unit.SECTION: words.section,
    Unit.SIZE: words.size,
}
_Unmet = tuple[str, float | str | list[str] | None, float | str | None, float | None]


def _shown(criterion: Criterion, actual: float) -> float:
    """The firm's value as printed: an age rounded towards the side that fails."""
    if criterion.unit is not Unit.YEARS:
        return actual
    at_most = criterion.compare is Comparison.AT_MOST
    return words.years_up(actual) if at_most else words.years_down(actual)


def _names(criterion: Criterion, codes: list[str], lang: Lang) -> str:
    if criterion.unit is Unit.TOWN:
        return words.towns(codes, lang)
    names = [_NAME[criterion.unit](code, lang) for code in codes]
    if criterion.unit is Unit.SECTION:
        # Section names contain "、" and ",", so a list of them needs a stronger separator.
        return words.join(names, lang, zh_sep="；", en_sep="; ")
    return words.join(names, lang)


def unmet_criteria(
    elig: PairEligibility,
    k: int,
    firms: FirmTable,
    i: int,
    products: ProductTable,
    j: int,
    lang: Lang,
) -> list[UnmetCriterion]:
    """One entry per criterion that pair k (firm i, product j) fails, in registry order."""
    return [
        UnmetCriterion.model_validate(item)
        for item in unmet_items(elig, k, firms, i, products, j, lang)
    ]


def unmet_items(
    elig: PairEligibility,
    k: int,
    firms: FirmTable,
    i: int,
    products: ProductTable,
    j: int,
    lang: Lang,
) -> list[dict[str, Any]]:
    """unmet_criteria as the plain data UnmetCriterion validates (the ranking serves these)."""
    out = []
    for c in np.flatnonzero(elig.failed[k]).tolist():
        gap = float(elig.gap[k, c])
        message, required, actual, gap_or_none = _describe_unmet(
            CRITERIA[c], c, None if math.isnan(gap) else gap, firms, i, products, j, lang
        )
        out.append(
            {
                "code": CRITERIA[c].code,
                "message": message,
                "required": required,
                "actual": actual,
                "gap": gap_or_none,
                "actionable": bool(ACTIONABLE[c]),
            }
        )
    return out


def _describe_unmet(
    criterion: Criterion,
    c: int,
    gap: float | None,
    firms: FirmTable,
    i: int,
    products: ProductTable,
    j: int,
    lang: Lang,
) -> _Unmet:
    """(message, required, actual, gap) of one failed criterion."""
    actual, required = float(firms.values[i, c]), float(products.settings[j, c])
    if criterion.register is not None and products.verified_only[j, c]:
        label = words.zh_en(lang, *criterion.label)
        register = words.zh_en(lang, *REGISTER_LABELS[criterion.register])
        message = words.say("unmet:verified_only", lang, label=label, register=register)
        return message, None, None, None
    if criterion.compare is Comparison.REQUIRED:
        return words.fill(criterion.unmet, lang), None, None, None
    if criterion.compare is Comparison.RATING:
        floor, own = words.rating(required), words.rating(actual)
        if own is None and criterion.unmet_unknown is not None:
            # Notches from "unrated" mean nothing: the firm needs a rating, not an upgrade.
            return words.fill(criterion.unmet_unknown, lang, r=floor), floor, None, None
        n = round(gap or 0)
        notches = words.zh_en(lang, str(n), f"{n} notch" if n == 1 else f"{n} notches")
        return words.fill(criterion.unmet, lang, a=own, r=floor, g=notches), floor, own, gap
    if criterion.is_list:
        vocabulary = VOCABULARIES[criterion.unit]
        allowed = [str(vocabulary[x]) for x in np.flatnonzero(products.allowed[criterion.code][j])]
        own_code = str(vocabulary[int(actual)])
        own = _NAME[criterion.unit](own_code, lang)
        message = words.fill(criterion.unmet, lang, names=_names(criterion, allowed, lang), own=own)
        return message, allowed, own_code, None
    show, shown = _PRINT[criterion.unit], _shown(criterion, actual)
    values = {
        "a": show(shown, lang),
        "r": show(required, lang),
        "g": show(abs(required - shown), lang),
    }
    return words.fill(criterion.unmet, lang, **values), required, actual, gap


def restrictive_rules(products: ProductTable, rows: Ints) -> Bools:
    """len(rows) × MET_ORDER: whether product rows[r] sets rule c, all at once."""
    out: Bools = ~np.isnan(products.settings[rows][:, _MET_COLUMNS])
    return out.reshape(len(rows), len(MET_ORDER))


def met_key(code: str, products: ProductTable, j: int) -> tuple[object, ...]:
    """What met_message's text depends on besides the firm and the language."""
    if CRITERIA_BY_CODE[code].is_list:
        return (code,)
    return (code, float(products.settings[j, _COLUMN[code]]), int(products.category[j]))


def rule_reasons(
    elig: PairEligibility,
    k: int,
    firms: FirmTable,
    i: int,
    products: ProductTable,
    j: int,
    lang: Lang,
) -> list[Reason]:
    """The product's restrictive rules that firm i meets, with its values; thresholds first."""
    sets = restrictive_rules(products, np.array([j]))[0]
    failed = elig.failed[k, _MET_COLUMNS]
    return [
        Reason(code=code, message=met_message(code, firms, i, products, j, lang), source="rule")
        for code, shown in zip(MET_ORDER, (sets & ~failed).tolist(), strict=True)
        if shown
    ]


def met_message(
    code: str, firms: FirmTable, i: int, products: ProductTable, j: int, lang: Lang
) -> str:
    """How firm i meets the restrictive rule ``code`` of product j."""
    criterion, c = CRITERIA_BY_CODE[code], _COLUMN[code]
    actual, required = float(firms.values[i, c]), float(products.settings[j, c])
    category = words.category(products, j, lang)
    if criterion.is_list:
        own = _NAME[criterion.unit](str(VOCABULARIES[criterion.unit][int(actual)]), lang)
        return words.fill(criterion.met, lang, own=own)
    if criterion.compare is Comparison.RATING:
        return words.fill(criterion.met, lang, a=words.rating(actual), r=words.rating(required))
    if criterion.compare is Comparison.REQUIRED:
        held = ""
        if criterion.unit in _PRINT:  # a flag held by having an amount: say how much
            held = _PRINT[criterion.unit](float(firms.field(criterion.firm_fields[0])[i]), lang)
        return words.fill(criterion.met, lang, v=held, category=category)
    show, shown = _PRINT[criterion.unit], _shown(criterion, actual)
    return words.fill(
        criterion.met, lang, a=show(shown, lang), r=show(required, lang), category=category
    )
