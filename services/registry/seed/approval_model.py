"""The hidden ground-truth approval model behind synthetic loan decisions (never used to serve).

The matcher is trained on decisions drawn from this model and evaluated on how well it recovers
it, so the formula is written out here in full. For a firm F applying to product P (category c,
offered by institution i) for amount A over T months, with every ratio clipped as shown:

    z = 0.8                                                     intercept
        + APPETITE[c]                                           category appetite of banks
        + INSTITUTION_BIAS[i]                                   small per-institution lean
        + RATING[F.credit_rating]                               AAA +1.8 … C -2.5, unrated -0.3
        + 0.9 * clip(ln(F.revenue / A) - ln 4, -3, 1.5)         revenue vs request (4x neutral)
        - 1.2 * clip(A / F.assets - 0.6, 0, 2.5)                leverage: request vs total assets
        + 0.9 * clip(ln(collateral(F, P) / A), -2.5, 0.7)       only for collateral-backed kinds
        + 0.5 * clip(ln(1 + years) - ln 5, -1.8, 1.0)           years since establishment
        + SIZE[size_class]                                      micro -0.25 … large +0.4
        + 0.5 * clip(ln(F.export_usd / 1e6), -3, 1.5)           莞贸通 and 信保+担保 only;
                                                                a non-exporter gets -1.5
        + 0.5 high-tech + 0.5 专精特新 + 0.3 ln(1 + invention)   科技信贷 and 投贷担 only
        - 0.8 if F never borrowed and c is not first_loan       banks shy from 白户
        + 0.2 if F never borrowed and c is first_loan           the 首贷 push of items 58/66
        - 0.25 * max(0, T - 36) / 12                            long tenors
        - 2.0 if A exceeds the product's cap (pct of its basis)

    p = sigmoid(z), and p is multiplied by 0.05 when F breaks any hard eligibility rule of P
    (eligibility.hard_rule_violations: towns, sections, sizes, minimums, flags, rating floor).

collateral(F, P) by P.collateral_kind: real_estate → F's real-estate value, equipment → its
equipment, receivables → receivables from core enterprises, procurement_contract → procurement
contracts, intellectual_property → 80万 per invention and 10万 per utility patent. Other kinds
(none, guarantee, insurance_policy, carbon_quota) have no collateral term.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.registry.seed.eligibility import hard_rule_violations, years_established
from services.registry.seed.population import USD_CNY
from shared.enums import AmountCapBasis, CollateralKind, CreditRating, RejectionReason
from shared.vocab.categories import ProductCategory

INTERCEPT = 0.8  # calibrated so a history over the catalogue approves about 60%
INELIGIBLE_FACTOR = 0.05
_C = ProductCategory

APPETITE: Mapping[str, float] = {
    _C.GOV_PROCUREMENT: 0.8,  # the treasury pays the bank directly
    _C.GUANMAOTONG: 0.7,  # insured and subsidised, large exporters
    _C.GUARANTEED: 0.6,
    _C.SUPPLY_CHAIN: 0.5,
    _C.LEASING: 0.5,  # the lessor owns the equipment
    _C.RECEIVABLES: 0.4,
    _C.GREEN: 0.4,
    _C.CREDIT_INSURANCE_GUARANTEE: 0.3,
    _C.TECH_CREDIT: 0.1,
    _C.FIRST_LOAN: 0.0,
    _C.IP_PLEDGE: -0.2,  # patents are hard to value and to sell
    _C.INVEST_LOAN_GUARANTEE: -0.3,  # early-stage firms
}

INSTITUTION_BIAS: Mapping[str, float] = {
    "东莞银行": 0.15,
    "东莞农村商业银行": 0.1,
    "中国工商银行东莞分行": 0.3,  # reports ~99% approval of 普惠 applications (§5.10)
    "中国银行东莞分行": 0.0,
    "中国建设银行东莞分行": 0.05,
    "中国农业银行东莞分行": 0.0,
    "招商银行东莞分行": -0.25,
    "广发银行东莞分行": -0.1,
    "中国邮政储蓄银行东莞分行": 0.1,
    "中信银行东莞分行": -0.15,
    "中国出口信用保险公司东莞办事处": -0.1,
    "东莞市科创融资担保有限公司": 0.2,
    "广东粤财融资担保集团有限公司": 0.1,
    "莞信融资租赁有限公司（演示）": 0.25,
    "湾区智造融资租赁有限公司（演示）": 0.15,
    "东莞市科创资本（投贷担合作方）": -0.2,
}

RATING: Mapping[str | None, float] = {
    CreditRating.AAA: 1.8,
    CreditRating.AA: 1.3,
    CreditRating.A: 0.8,
    CreditRating.BBB: 0.3,
    CreditRating.BB: -0.4,
    CreditRating.B: -1.2,
    CreditRating.C: -2.5,
    None: -0.3,
}

SIZE: Mapping[str, float] = {"micro": -0.25, "small": 0.0, "medium": 0.25, "large": 0.4}

_TRADE = frozenset({_C.GUANMAOTONG, _C.CREDIT_INSURANCE_GUARANTEE})
_TECH = frozenset({_C.TECH_CREDIT, _C.INVEST_LOAN_GUARANTEE})
_COLLATERAL_FIELD: Mapping[str, str] = {
    CollateralKind.REAL_ESTATE: "collateral_real_estate_yuan",
    CollateralKind.EQUIPMENT: "collateral_equipment_yuan",
    CollateralKind.RECEIVABLES: "core_enterprise_receivables_yuan",
    CollateralKind.PROCUREMENT_CONTRACT: "gov_procurement_contracts_yuan",
}
_CAP_FIELD: Mapping[str, str] = {
    AmountCapBasis.GOV_PROCUREMENT_CONTRACTS: "gov_procurement_contracts_yuan",
    AmountCapBasis.RECEIVABLES: "core_enterprise_receivables_yuan",
    AmountCapBasis.ANNUAL_REVENUE: "annual_revenue_yuan",
}

# Which term, when it is the most negative, a bank would name as the reason to reject.
_REASON_BY_TERM: Mapping[str, RejectionReason] = {
    "rating": RejectionReason.POOR_CREDIT_HISTORY,
    "revenue": RejectionReason.INSUFFICIENT_REVENUE,
    "leverage": RejectionReason.HIGH_LEVERAGE,
    "collateral": RejectionReason.INSUFFICIENT_COLLATERAL,
    "amount_cap": RejectionReason.AMOUNT_TOO_HIGH,
    "export": RejectionReason.INSUFFICIENT_REVENUE,
}


def _clip(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def amount_cap_yuan(firm: Mapping[str, Any], product: Mapping[str, Any]) -> int | None:
    """The most the product lends this firm by its cap basis, or None when it has no cap."""
    basis = str(product.get("amount_cap_basis") or AmountCapBasis.NONE)
    pct = int(product.get("amount_cap_pct", 100))
    if basis == AmountCapBasis.EXPORT_REVENUE:
        base = float(firm.get("export_revenue_usd", 0)) * USD_CNY
    elif basis == AmountCapBasis.COLLATERAL:
        base = float(firm.get("collateral_real_estate_yuan", 0)) + float(
            firm.get("collateral_equipment_yuan", 0)
        )
    elif basis in _CAP_FIELD:
        base = float(firm.get(_CAP_FIELD[basis], 0))
    else:
        return None
    return int(base * pct / 100)


def approval_terms(
    firm: Mapping[str, Any],
    product: Mapping[str, Any],
    requested_amount_yuan: int,
    requested_term_months: int,
    size_class: str,
    *,
    institution_name: str | None = None,
    as_of: date | None = None,
) -> dict[str, float]:
    """The additive terms of the logit z (see the module docstring), by name."""
    as_of = as_of or date.today()
    amount = max(1, requested_amount_yuan)
    category = ProductCategory(product["category"])
    never_borrowed = not firm.get("has_borrowed_before", True)
    rating = firm.get("credit_rating")
    revenue = firm["annual_revenue_yuan"]
    terms = {
        "intercept": INTERCEPT,
        "appetite": APPETITE[category],
        "institution": INSTITUTION_BIAS.get(institution_name or "", 0.0),
        "rating": RATING[None if rating is None else CreditRating(rating)],
        "revenue": 0.9 * _clip(math.log(max(1, revenue) / amount) - math.log(4), -3, 1.5),
        "leverage": -1.2 * _clip(amount / max(1, firm["total_assets_yuan"]) - 0.6, 0, 2.5),
        "age": 0.5 * _clip(math.log1p(years_established(firm, as_of)) - math.log(5), -1.8, 1.0),
        "size": SIZE.get(str(size_class), 0.0),
        "term": -0.25 * max(0, requested_term_months - 36) / 12,
    }
    collateral = _collateral_value(firm, str(product.get("collateral_kind", "none")))
    if collateral is not None:
        terms["collateral"] = 0.9 * _clip(math.log(max(1.0, collateral) / amount), -2.5, 0.7)
    if category in _TRADE:
        export_usd = firm.get("export_revenue_usd", 0)
        terms["export"] = 0.5 * _clip(math.log(export_usd / 1e6), -3, 1.5) if export_usd else -1.5
    if category in _TECH:
        terms["tech"] = (
            0.5 * bool(firm.get("is_high_tech"))
            + 0.5 * bool(firm.get("is_specialized_sme"))
            + 0.3 * math.log1p(firm.get("invention_patents", 0))
        )
    if never_borrowed:
        terms["first_loan"] = 0.2 if category is ProductCategory.FIRST_LOAN else -0.8
    cap = amount_cap_yuan(firm, product)
    if cap is not None and requested_amount_yuan > cap:
        terms["amount_cap"] = -2.0
    return terms


def _collateral_value(firm: Mapping[str, Any], kind: str) -> float | None:
    if kind == CollateralKind.INTELLECTUAL_PROPERTY:
        patents = float(firm.get("invention_patents", 0)), float(firm.get("utility_patents", 0))
        return 800_000.0 * patents[0] + 100_000.0 * patents[1]
    field = _COLLATERAL_FIELD.get(kind)
    return None if field is None else float(firm.get(field, 0))


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the hidden model makes of one application: its terms, broken rules and probability."""

    terms: dict[str, float]
    violations: list[str]
    probability: float


def assess_application(
    firm: Mapping[str, Any],
    product: Mapping[str, Any],
    requested_amount_yuan: int,
    requested_term_months: int,
    size_class: str,
    *,
    institution_name: str | None = None,
    as_of: date | None = None,
) -> Assessment:
    """The model's full view of an application; ``as_of`` defaults to today."""
    as_of = as_of or date.today()
    terms = approval_terms(
        firm,
        product,
        requested_amount_yuan,
        requested_term_months,
        size_class,
        institution_name=institution_name,
        as_of=as_of,
    )
    violations = hard_rule_violations(firm, product, size_class, as_of)
    p = 1.0 / (1.0 + math.exp(-sum(terms.values())))
    return Assessment(terms, violations, p * INELIGIBLE_FACTOR if violations else p)


def true_approval_probability(
    firm: Mapping[str, Any],
    product: Mapping[str, Any],
    requested_amount_yuan: int,
    requested_term_months: int,
    size_class: str,
    *,
    institution_name: str | None = None,
    as_of: date | None = None,
) -> float:
    """Probability that the institution approves this application under the hidden model."""
    return assess_application(
        firm,
        product,
        requested_amount_yuan,
        requested_term_months,
        size_class,
        institution_name=institution_name,
        as_of=as_of,
    ).probability


def likely_rejection_reason(
    terms: Mapping[str, float], violations: Sequence[str]
) -> RejectionReason:
    """The reason a bank would give: a broken rule first, else the worst-scoring factor."""
    if violations:
        return RejectionReason.INELIGIBLE_PRODUCT
    named = {name: value for name, value in terms.items() if name in _REASON_BY_TERM}
    worst = min(named, key=lambda name: named[name], default=None)
    if worst is None or named[worst] > -0.3:
        return RejectionReason.RISK_APPETITE  # nothing stands out: the bank simply passed
    return _REASON_BY_TERM[worst]
