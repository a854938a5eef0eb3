"""Model reasons: an approval-model feature group as a fact about the firm, and its sign."""

from __future__ import annotations

import math

import numpy as np

from services.matching.cost import lending_limit
from services.matching.explain.words import (
    fill,
    format_usd,
    format_yuan,
    num,
    rating,
    say,
    size,
    years_down,
    years_text,
    zh_en,
)
from services.matching.tables import (
    COLLATERAL_KINDS,
    FLAG_RULES,
    SIZE_CLASSES,
    FirmTable,
    ProductTable,
)
from shared.criteria import CRITERIA_BY_CODE
from shared.enums import CollateralKind
from shared.schemas.matching import Lang, Reason

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
    return fact + say("helps" if weight > 0 else "hurts", lang)


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
        return say(group, lang, v=format_yuan(revenue, lang), x=f"{revenue / per_amount:.1f}")
    if group == "leverage":
        assets = float(firms.assets[i])
        if assets <= 0:
            return say("leverage:none", lang, v=requested)
        return say(
            group,
            lang,
            v=requested,
            assets=format_yuan(assets, lang),
            share=f"{amount / assets:.0%}",
        )
    if group == "collateral_coverage":
        return _collateral(firms, i, int(products.collateral_kind[j]), amount, lang)
    if group == "years":
        return say(group, lang, a=years_text(years_down(float(firms.years[i])), lang))
    if group == "rating":
        held = rating(float(firms.rating_rank[i]))
        return say("rating:none", lang) if held is None else say(group, lang, a=held)
    if group == "size":
        return say(group, lang, a=size(SIZE_CLASSES[int(firms.size[i])], lang))
    if group == "exports":
        usd = float(firms.export_usd[i])
        return say("exports:none", lang) if usd <= 0 else say(group, lang, a=format_usd(usd, lang))
    if group == "innovation":
        return _innovation(firms, i, lang)
    if group == "first_loan":
        first = bool(firms.has[i, FLAG_RULES.index("requires_first_loan")])
        return say(group if first else "first_loan:none", lang)
    if group == "term":
        return _term(float(products.term_min[j]), float(products.term_max[j]), term, lang)
    if cap is None:
        one_firm, one_product = np.array([i], dtype=np.int64), np.array([j], dtype=np.int64)
        cap = float(lending_limit(firms, one_firm, products, one_product)[0])
    key = "amount_cap" if amount <= cap else "amount_cap:over"
    return say(key, lang, v=requested, cap=format_yuan(cap, lang))


def _collateral(firms: FirmTable, i: int, kind: int, amount: float, lang: Lang) -> str:
    if kind == _IP:
        patents = float(firms.patents[i])
        if patents <= 0:
            return say(
                "collateral_coverage:none",
                lang,
                kind=zh_en(lang, "可质押专利", "patents to pledge"),
            )
        return say("collateral_coverage:patents", lang, a=num(patents))
    if kind not in _PLEDGES:
        return say("collateral_coverage:unsecured", lang)
    name_zh, name_en, column = _PLEDGES[kind]
    value = float(getattr(firms, column)[i])
    if value <= 0:
        name = zh_en(lang, name_zh, name_en[0].lower() + name_en[1:])
        return say("collateral_coverage:none", lang, kind=name)
    ratio = f"{value / max(amount, 1.0):.1f}"
    return say(
        "collateral_coverage",
        lang,
        kind=zh_en(lang, name_zh, name_en),
        v=format_yuan(value, lang),
        x=ratio,
    )


def _innovation(firms: FirmTable, i: int, lang: Lang) -> str:
    patents = float(firms.patents[i])
    facts = [say("innovation:patents", lang, a=num(patents))] if patents > 0 else []
    for flag in ("requires_high_tech", "requires_specialized_sme"):
        if firms.has[i, FLAG_RULES.index(flag)]:
            facts.append(
                fill(CRITERIA_BY_CODE[flag].met, lang)
            )  # the status, as a rule met says it
    if not facts:
        return say("innovation:none", lang)
    if lang == "zh":
        return "，".join(facts)
    # English reads as one sentence: only its first item keeps a capital.
    return ", ".join([facts[0], *(f[0].lower() + f[1:] for f in facts[1:])])


def _term(low: float, high: float, term: float, lang: Lang) -> str:
    span = num(low) if low == high else f"{num(low)}–{num(high)}"
    if math.isnan(term):
        return say("term:none", lang, span=span)
    if term > high:
        return say("term:over", lang, t=num(term), span=num(high))
    if term < low:
        return say("term:under", lang, t=num(term), span=num(low))
    return say("term", lang, t=num(term), span=span)
