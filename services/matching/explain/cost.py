"""The cost reason: what a product would cost a year after subsidy and fees."""

from __future__ import annotations

from services.matching.cost import PairCosts
from services.matching.explain.words import format_yuan, pct, say, zh_en
from services.matching.tables import ProductTable
from shared.schemas.matching import Lang, Reason


def cost_reason(costs: PairCosts, k: int, products: ProductTable, j: int, lang: Lang) -> Reason:
    """What the product would cost a year after subsidy and fees, and what that is made of."""
    return Reason(code="cost", message=cost_message(costs, k, products, j, lang), source="cost")


def cost_message(costs: PairCosts, k: int, products: ProductTable, j: int, lang: Lang) -> str:
    """The text of cost_reason."""
    offer = float(costs.offer_amount[k])
    if offer <= 0:
        return say("cost:none", lang, v=format_yuan(float(products.amount_min[j]), lang))
    subsidy_pct, cap = float(products.subsidy_pct[j]), float(products.subsidy_cap[j])
    fee_bp = float(products.guarantee_fee_bp[j])
    parts = [say("cost:rate", lang, v=pct(float(costs.rate_bp[k])))]
    if subsidy_pct > 0:
        subsidy = f"{subsidy_pct:.0f}%"
        if cap > 0:
            parts.append(say("cost:subsidy_cap", lang, v=subsidy, cap=format_yuan(cap, lang)))
        else:
            parts.append(say("cost:subsidy", lang, v=subsidy))
    if fee_bp > 0:
        parts.append(say("cost:fee", lang, v=pct(fee_bp)))
    key = "cost:subsidised" if subsidy_pct > 0 else "cost"
    effective = pct(float(costs.effective_rate_bp[k]))
    message = say(key, lang, eff=effective, parts=zh_en(lang, "，", ", ").join(parts))
    coverage = float(costs.coverage[k])
    if coverage < 1:
        message += say("cost:partial", lang, v=format_yuan(offer, lang), share=f"{coverage:.0%}")
    return message
