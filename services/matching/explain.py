"""Readable reasons behind a match, in Chinese or English: rules met and unmet, cost, model."""

# Every message is built from the firm's and the product's own numbers, so it quantifies what it
# claims. Both languages' wording lives in one table (explain_text.TEXT), so they stay in step.

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from services.matching.cost import PairCosts, lending_limit
from services.matching.eligibility import ACTIONABLE, CRITERION_CODES, PairEligibility
from services.matching.explain_text import TEXT
from services.matching.tables import CATEGORIES as CATEGORY_ORDER
from services.matching.tables import (
    COLLATERAL_KINDS,
    FLAG_RULES,
    SECTION_LETTERS,
    SIZE_CLASSES,
    TOWN_CODES,
    Bools,
    FirmTable,
    Floats,
    Ints,
    ProductTable,
)
from shared.enums import CollateralKind, CreditRating
from shared.schemas.matching import Lang, Reason, UnmetCriterion
from shared.vocab.categories import CATEGORIES
from shared.vocab.industries import SECTIONS_BY_LETTER
from shared.vocab.size_class import SizeClass
from shared.vocab.towns import TOWNS_BY_CODE

# The approval model's feature groups that read as a fact about the firm (features.GROUP_NAMES
# also has product-only groups such as "category", which explain nothing about the firm).
MODEL_GROUPS = frozenset(
    {
        "revenue_to_amount",
        "leverage",
        "collateral_coverage",
        "years",
        "rating",
        "size",
        "exports",
        "innovation",
        "first_loan",
        "term",
        "amount_cap",
    }
)
MAX_TOWNS_NAMED = 6  # a 松山湖-zone product lists 11 towns; past six a list stops being read


def _say(key: str, lang: Lang, **values: object) -> str:
    zh, en = TEXT[key]
    return (zh if lang == "zh" else en).format(**values)


# --- numbers and names ---------------------------------------------------------------------


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scaled(value: float, prefix: str, keep_decimal: bool) -> str:
    """prefix + K/M/B; one decimal below 100 of a unit, optionally without a trailing ".0"."""
    sign, v = ("-" if value < 0 else ""), abs(value)
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        scaled = v / size
        if round(scaled, 1) >= 1:
            if unit == "K" or round(scaled, 1) >= 100:
                return f"{sign}{prefix}{scaled:,.0f}{unit}"
            text = f"{scaled:.1f}"
            return f"{sign}{prefix}{text if keep_decimal else _trim(text)}{unit}"
    return f"{sign}{prefix}{v:,.0f}"


def format_yuan(value: float, lang: Lang) -> str:
    """Chinese "85万元", "2,000万元", "1.2亿元"; English "¥850K", "¥2.0M", "¥120M"."""
    if lang == "en":
        return _scaled(value, "¥", keep_decimal=True)
    sign, v = ("-" if value < 0 else ""), abs(value)
    if round(v / 1e8, 2) >= 1:
        return f"{sign}{_trim(f'{v / 1e8:,.2f}')}亿元"
    if v >= 1e4:
        wan = v / 1e4
        return f"{sign}{f'{wan:,.0f}' if wan >= 100 else _trim(f'{wan:.1f}')}万元"
    return f"{sign}{v:,.0f}元"


def format_usd(value: float, lang: Lang) -> str:
    """ "US$8.2M", "US$10M", "US$850K" in either language: firms report exports in dollars."""
    return _scaled(value, "US$", keep_decimal=False)


def _num(value: float, lang: Lang = "zh") -> str:
    # Takes lang only to fit the value printers of _NUMERIC; digits read the same in both.
    return _trim(f"{value:,.1f}")


def _years(value: float) -> float:
    # Rounded down: a firm 2.96 years old has not "reached 3 years" and must not read as if so.
    return math.floor(value * 10 + 1e-9) / 10


def _years_text(value: float, lang: Lang) -> str:
    # The unit is in the Chinese template; English needs it here to agree in number.
    return _zh_en(lang, _num(value), f"{_num(value)} year{'' if value == 1 else 's'}")


def _pct(bp: float) -> str:
    return f"{bp / 100:.2f}%"


def _zh_en(lang: Lang, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


_SIZE_ZH = {
    SizeClass.LARGE: "大型",
    SizeClass.MEDIUM: "中型",
    SizeClass.SMALL: "小型",
    SizeClass.MICRO: "微型",
}
_RATINGS = list(CreditRating)  # best first, so rank r (AAA = 7) is _RATINGS[7 - r]


def _town(code: str, lang: Lang) -> str:
    town = TOWNS_BY_CODE[code]
    return _zh_en(lang, town.name_zh, town.pinyin)


def _section(letter: str, lang: Lang) -> str:
    section = SECTIONS_BY_LETTER[letter]
    return _zh_en(lang, section.name_zh, section.name_en)


def _size(size: SizeClass, lang: Lang) -> str:
    return _zh_en(lang, _SIZE_ZH[size], size.value)


def _rating(rank: float) -> str | None:
    return None if rank <= 0 else _RATINGS[7 - int(rank)].value


def _category(products: ProductTable, j: int, lang: Lang) -> str:
    info = CATEGORIES[CATEGORY_ORDER[int(products.category[j])]]
    return _zh_en(lang, info.name_zh, info.name_en)


def _join(names: Sequence[str], lang: Lang, zh_sep: str = "、", en_sep: str = ", ") -> str:
    if lang == "zh" or len(names) < 2:
        return _zh_en(lang, zh_sep, en_sep).join(names)
    return f"{en_sep.join(names[:-1])} or {names[-1]}"


def _towns(codes: Sequence[str], lang: Lang) -> str:
    names = [_town(code, lang) for code in codes]
    if len(names) <= MAX_TOWNS_NAMED:
        return _join(names, lang)
    shown = MAX_TOWNS_NAMED - 1
    head = _zh_en(lang, "、", ", ").join(names[:shown])
    return _zh_en(
        lang, f"{head}等 {len(names)} 个镇街", f"{head} and {len(names) - shown} other towns"
    )


def _allowed(row: Bools) -> list[int]:
    return [int(x) for x in np.flatnonzero(row)]


# --- rules ---------------------------------------------------------------------------------

# Numeric rules: the firm's column, the product's column, how to print a value.
_Numeric = tuple[
    Callable[[FirmTable], Floats], Callable[[ProductTable], Floats], Callable[[float, Lang], str]
]
_NUMERIC: dict[str, _Numeric] = {
    "min_export_usd": (lambda f: f.export_usd, lambda p: p.min_export_usd, format_usd),
    "min_patents": (lambda f: f.patents, lambda p: p.min_patents, _num),
    "min_revenue_yuan": (lambda f: f.revenue, lambda p: p.min_revenue, format_yuan),
    "max_revenue_yuan": (lambda f: f.revenue, lambda p: p.max_revenue, format_yuan),
    "min_employees": (lambda f: f.employees, lambda p: p.min_employees, _num),
    "min_years_established": (lambda f: f.years, lambda p: p.min_years, _years_text),
}
# Most specific first: a threshold the firm clears says more than the town it happens to be in.
MET_ORDER: tuple[str, ...] = (
    *_NUMERIC,
    "min_credit_rating",
    *FLAG_RULES,
    "elig_size_classes",
    "elig_industry_sections",
    "elig_town_codes",
)
_Unmet = tuple[str, float | str | list[str] | None, float | str | None, float | None]


def unmet_criteria(
    elig: PairEligibility,
    k: int,
    firms: FirmTable,
    i: int,
    products: ProductTable,
    j: int,
    lang: Lang,
) -> list[UnmetCriterion]:
    """One entry per criterion that pair k (firm i, product j) fails, in CRITERIA order."""
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
    for c in np.flatnonzero(elig.failed[k]):
        gap = float(elig.gap[k, c])
        message, required, actual, gap_or_none = _describe_unmet(
            CRITERION_CODES[c], None if math.isnan(gap) else gap, firms, i, products, j, lang
        )
        out.append(
            {
                "code": CRITERION_CODES[c],
                "message": message,
                "required": required,
                "actual": actual,
                "gap": gap_or_none,
                "actionable": bool(ACTIONABLE[c]),
            }
        )
    return out


def _describe_unmet(
    code: str,
    gap: float | None,
    firms: FirmTable,
    i: int,
    products: ProductTable,
    j: int,
    lang: Lang,
) -> _Unmet:
    """(message, required, actual, gap) of one failed criterion."""
    if code in _NUMERIC:
        firm_column, product_column, show = _NUMERIC[code]
        actual, required = float(firm_column(firms)[i]), float(product_column(products)[j])
        shown = _years(actual) if code == "min_years_established" else actual
        values = {
            "a": show(shown, lang),
            "r": show(required, lang),
            "g": show(abs(required - shown), lang),
        }
        return _say(code, lang, **values), required, actual, gap
    if code == "min_credit_rating":
        floor, own = (
            _rating(float(products.min_rating_rank[j])),
            _rating(float(firms.rating_rank[i])),
        )
        if own is None:
            # Notches from "unrated" mean nothing: the firm needs a rating, not an upgrade.
            return _say("min_credit_rating:unrated", lang, r=floor), floor, None, None
        n = round(gap or 0)
        notches = _zh_en(lang, str(n), f"{n} notch" if n == 1 else f"{n} notches")
        return _say(code, lang, a=own, r=floor, g=notches), floor, own, gap
    if code in FLAG_RULES:
        return _say(code, lang), None, None, None
    if code == "elig_town_codes":
        codes = [TOWN_CODES[t] for t in _allowed(products.town_allowed[j])]
        town = TOWN_CODES[int(firms.town[i])]
        return _say(code, lang, names=_towns(codes, lang), own=_town(town, lang)), codes, town, None
    if code == "elig_industry_sections":
        letters = [SECTION_LETTERS[s] for s in _allowed(products.section_allowed[j])]
        letter = SECTION_LETTERS[int(firms.section[i])]
        # Section names contain "、" and ",", so a list of them needs a stronger separator.
        names = _join([_section(x, lang) for x in letters], lang, zh_sep="；", en_sep="; ")
        return _say(code, lang, names=names, own=_section(letter, lang)), letters, letter, None
    if code == "elig_size_classes":
        sizes = [SIZE_CLASSES[s] for s in _allowed(products.size_allowed[j])]
        size = SIZE_CLASSES[int(firms.size[i])]
        names = _join([_size(s, lang) for s in sizes], lang)
        message = _say(code, lang, names=names, own=_size(size, lang))
        return message, [s.value for s in sizes], size.value, None
    raise ValueError(f"no message for eligibility criterion {code!r}")


def _product_sets(code: str, products: ProductTable, j: int) -> bool:
    if code in _NUMERIC:
        return not math.isnan(float(_NUMERIC[code][1](products)[j]))
    if code == "min_credit_rating":
        return not math.isnan(float(products.min_rating_rank[j]))
    if code in FLAG_RULES:
        return bool(products.requires[j, FLAG_RULES.index(code)])
    restricted = {
        "elig_size_classes": products.size_restricted,
        "elig_industry_sections": products.section_restricted,
        "elig_town_codes": products.town_restricted,
    }
    return bool(restricted[code][j])


def restrictive_rules(products: ProductTable, rows: Ints) -> Bools:
    """len(rows) × MET_ORDER: whether product rows[r] sets rule c (_product_sets, all at once)."""
    restricted = {
        "elig_size_classes": products.size_restricted,
        "elig_industry_sections": products.section_restricted,
        "elig_town_codes": products.town_restricted,
    }
    columns = []
    for code in MET_ORDER:
        if code in _NUMERIC:
            columns.append(~np.isnan(_NUMERIC[code][1](products)[rows]))
        elif code == "min_credit_rating":
            columns.append(~np.isnan(products.min_rating_rank[rows]))
        elif code in FLAG_RULES:
            columns.append(products.requires[rows, FLAG_RULES.index(code)])
        else:
            columns.append(restricted[code][rows])
    out: Bools = np.stack(columns, axis=1).reshape(len(rows), len(MET_ORDER))
    return out


def met_key(code: str, products: ProductTable, j: int) -> tuple[object, ...]:
    """What met_message's text depends on besides the firm and the language."""
    category = int(products.category[j])
    if code in _NUMERIC:
        return (code, float(_NUMERIC[code][1](products)[j]), category)
    if code == "min_credit_rating":
        return (code, float(products.min_rating_rank[j]))
    if code in FLAG_RULES:
        return (code, category)
    return (code,)


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
    failed = {CRITERION_CODES[c] for c in np.flatnonzero(elig.failed[k])}
    return [
        Reason(code=code, message=met_message(code, firms, i, products, j, lang), source="rule")
        for code in MET_ORDER
        if code not in failed and _product_sets(code, products, j)
    ]


def met_message(
    code: str, firms: FirmTable, i: int, products: ProductTable, j: int, lang: Lang
) -> str:
    """How firm i meets the restrictive rule ``code`` of product j."""
    key, category = f"met:{code}", _category(products, j, lang)
    if code in _NUMERIC:
        firm_column, product_column, show = _NUMERIC[code]
        actual, required = float(firm_column(firms)[i]), float(product_column(products)[j])
        shown = _years(actual) if code == "min_years_established" else actual
        return _say(key, lang, a=show(shown, lang), r=show(required, lang), category=category)
    if code == "min_credit_rating":
        own, floor = (
            _rating(float(firms.rating_rank[i])),
            _rating(float(products.min_rating_rank[j])),
        )
        return _say(key, lang, a=own, r=floor)
    if code in FLAG_RULES:
        held = {
            "requires_gov_procurement": firms.procurement,
            "requires_receivables": firms.receivables,
        }
        value = format_yuan(float(held[code][i]), lang) if code in held else ""
        return _say(key, lang, v=value, category=category)
    if code == "elig_size_classes":
        return _say(key, lang, own=_size(SIZE_CLASSES[int(firms.size[i])], lang))
    if code == "elig_industry_sections":
        return _say(key, lang, own=_section(SECTION_LETTERS[int(firms.section[i])], lang))
    return _say(key, lang, own=_town(TOWN_CODES[int(firms.town[i])], lang))


# --- cost ----------------------------------------------------------------------------------


def cost_reason(costs: PairCosts, k: int, products: ProductTable, j: int, lang: Lang) -> Reason:
    """What the product would cost a year after subsidy and fees, and what that is made of."""
    return Reason(code="cost", message=cost_message(costs, k, products, j, lang), source="cost")


def cost_message(costs: PairCosts, k: int, products: ProductTable, j: int, lang: Lang) -> str:
    """The text of cost_reason."""
    offer = float(costs.offer_amount[k])
    if offer <= 0:
        return _say("cost:none", lang, v=format_yuan(float(products.amount_min[j]), lang))
    subsidy_pct, cap = float(products.subsidy_pct[j]), float(products.subsidy_cap[j])
    fee_bp = float(products.guarantee_fee_bp[j])
    parts = [_say("cost:rate", lang, v=_pct(float(costs.rate_bp[k])))]
    if subsidy_pct > 0:
        subsidy = f"{subsidy_pct:.0f}%"
        if cap > 0:
            parts.append(_say("cost:subsidy_cap", lang, v=subsidy, cap=format_yuan(cap, lang)))
        else:
            parts.append(_say("cost:subsidy", lang, v=subsidy))
    if fee_bp > 0:
        parts.append(_say("cost:fee", lang, v=_pct(fee_bp)))
    key = "cost:subsidised" if subsidy_pct > 0 else "cost"
    effective = _pct(float(costs.effective_rate_bp[k]))
    message = _say(key, lang, eff=effective, parts=_zh_en(lang, "，", ", ").join(parts))
    coverage = float(costs.coverage[k])
    if coverage < 1:
        message += _say("cost:partial", lang, v=format_yuan(offer, lang), share=f"{coverage:.0%}")
    return message


# --- model factors -------------------------------------------------------------------------

# What a firm pledges under each secured kind, as features.py reads it; other kinds (pure
# credit, guarantee, insurance policy, carbon quota) take nothing the firm reports a value for.
_PLEDGES: dict[int, tuple[str, str, str]] = {
    COLLATERAL_KINDS.index(kind): names
    for kind, names in (
        (
            CollateralKind.REAL_ESTATE,
            ("可抵押房产", "Real-estate collateral", "collateral_real_estate"),
        ),
        (CollateralKind.EQUIPMENT, ("可抵押设备", "Equipment collateral", "collateral_equipment")),
        (
            CollateralKind.RECEIVABLES,
            ("核心企业应收账款", "Receivables from core enterprises", "receivables"),
        ),
        (
            CollateralKind.PROCUREMENT_CONTRACT,
            ("政府采购合同", "Government procurement contracts", "procurement"),
        ),
    )
}
_IP = COLLATERAL_KINDS.index(CollateralKind.INTELLECTUAL_PROPERTY)


def model_reason(
    group: str,
    weight: float,
    firms: FirmTable,
    i: int,
    products: ProductTable,
    j: int,
    amount: float,
    lang: Lang,
    *,
    term: float | None = None,
) -> Reason | None:
    """A model feature group as a fact about firm i and product j, and whether it helps.

    None for an unknown group or a weight of 0 (or NaN), which neither helps nor hurts. ``term``
    is the requested term in months; it defaults to the firm's stated need.
    """
    if group not in MODEL_GROUPS or weight == 0 or math.isnan(weight):
        return None
    term_months = float(firms.need_term[i]) if term is None else float(term)
    fact = model_fact(group, firms, i, products, j, amount, term_months, lang)
    return Reason(
        code=group, message=model_message(fact, weight, lang), source="model", weight=weight
    )


def model_message(fact: str, weight: float, lang: Lang) -> str:
    """A model fact and whether it helps (weight > 0) or hurts."""
    return fact + _say("helps" if weight > 0 else "hurts", lang)


def model_fact(
    group: str,
    firms: FirmTable,
    i: int,
    products: ProductTable,
    j: int,
    amount: float,
    term: float,
    lang: Lang,
    *,
    cap: float | None = None,
) -> str:
    """The fact behind a model group for firm i and product j; ``cap`` is product j's lending
    limit for the firm when the caller has it already (amount_cap), else it is computed."""
    requested = format_yuan(amount, lang)
    per_amount = max(amount, 1.0)  # amounts are positive; this only keeps a bad call finite
    if group == "revenue_to_amount":
        revenue = float(firms.revenue[i])
        return _say(group, lang, v=format_yuan(revenue, lang), x=f"{revenue / per_amount:.1f}")
    if group == "leverage":
        assets = float(firms.assets[i])
        if assets <= 0:
            return _say("leverage:none", lang, v=requested)
        return _say(
            group,
            lang,
            v=requested,
            assets=format_yuan(assets, lang),
            share=f"{amount / assets:.0%}",
        )
    if group == "collateral_coverage":
        return _collateral(firms, i, int(products.collateral_kind[j]), amount, lang)
    if group == "years":
        return _say(group, lang, a=_years_text(_years(float(firms.years[i])), lang))
    if group == "rating":
        rating = _rating(float(firms.rating_rank[i]))
        return _say("rating:none", lang) if rating is None else _say(group, lang, a=rating)
    if group == "size":
        return _say(group, lang, a=_size(SIZE_CLASSES[int(firms.size[i])], lang))
    if group == "exports":
        usd = float(firms.export_usd[i])
        return (
            _say("exports:none", lang) if usd <= 0 else _say(group, lang, a=format_usd(usd, lang))
        )
    if group == "innovation":
        return _innovation(firms, i, lang)
    if group == "first_loan":
        first = bool(firms.has[i, FLAG_RULES.index("requires_first_loan")])
        return _say(group if first else "first_loan:none", lang)
    if group == "term":
        return _term(float(products.term_min[j]), float(products.term_max[j]), term, lang)
    if cap is None:
        one_firm, one_product = np.array([i], dtype=np.int64), np.array([j], dtype=np.int64)
        cap = float(lending_limit(firms, one_firm, products, one_product)[0])
    key = "amount_cap" if amount <= cap else "amount_cap:over"
    return _say(key, lang, v=requested, cap=format_yuan(cap, lang))


def _collateral(firms: FirmTable, i: int, kind: int, amount: float, lang: Lang) -> str:
    if kind == _IP:
        patents = float(firms.patents[i])
        if patents <= 0:
            return _say(
                "collateral_coverage:none",
                lang,
                kind=_zh_en(lang, "可质押专利", "patents to pledge"),
            )
        return _say("collateral_coverage:patents", lang, a=_num(patents))
    if kind not in _PLEDGES:
        return _say("collateral_coverage:unsecured", lang)
    name_zh, name_en, column = _PLEDGES[kind]
    value = float(getattr(firms, column)[i])
    if value <= 0:
        name = _zh_en(lang, name_zh, name_en[0].lower() + name_en[1:])
        return _say("collateral_coverage:none", lang, kind=name)
    ratio = f"{value / max(amount, 1.0):.1f}"
    return _say(
        "collateral_coverage",
        lang,
        kind=_zh_en(lang, name_zh, name_en),
        v=format_yuan(value, lang),
        x=ratio,
    )


def _innovation(firms: FirmTable, i: int, lang: Lang) -> str:
    patents = float(firms.patents[i])
    facts = [_say("innovation:patents", lang, a=_num(patents))] if patents > 0 else []
    for flag in ("requires_high_tech", "requires_specialized_sme"):
        if firms.has[i, FLAG_RULES.index(flag)]:
            facts.append(_say(f"met:{flag}", lang))
    if not facts:
        return _say("innovation:none", lang)
    if lang == "zh":
        return "，".join(facts)
    # English reads as one sentence: only its first item keeps a capital.
    return ", ".join([facts[0], *(f[0].lower() + f[1:] for f in facts[1:])])


def _term(low: float, high: float, term: float, lang: Lang) -> str:
    span = _num(low) if low == high else f"{_num(low)}–{_num(high)}"
    if math.isnan(term):
        return _say("term:none", lang, span=span)
    if term > high:
        return _say("term:over", lang, t=_num(term), span=_num(high))
    if term < low:
        return _say("term:under", lang, t=_num(term), span=_num(low))
    return _say("term", lang, t=_num(term), span=span)
