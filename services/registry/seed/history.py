"""Synthetic application-and-decision history, drawn from the hidden approval model.

Firms with a financing need apply to products, mostly of a category that fits them (exporters to
trade finance, suppliers of core enterprises to receivables and supply-chain products, first-time
borrowers to 首贷 …) and mostly to products they are eligible for. Each decision is a coin flip
with the probability of approval_model.true_approval_probability, so a matcher trained on this
history can learn that model back. Recent months are busier, decisions take 1–20 working days,
and about 8% of applications, mostly the most recent, are still pending at ``end``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from services.registry.seed.approval_model import (
    Assessment,
    amount_cap_yuan,
    assess_application,
    likely_rejection_reason,
)
from services.registry.seed.catalogue import institutions
from services.registry.seed.eligibility import (
    age_settings,
    as_date,
    eligibility_matrix,
    meets_age_rules,
    years_established,
)
from shared.enums import CreditRating, RejectionReason
from shared.vocab.categories import ProductCategory
from shared.vocab.size_class import classify_size

PENDING_SHARE = 0.08
INELIGIBLE_APPLY_WEIGHT = 0.05  # relative pull of a product the firm does not qualify for
STALLED_SHARE = 0.005  # applications an institution simply never answered
WAN = 10_000
_C = ProductCategory

# Mean decision time in working days by category; lessors and trade finance take longest.
_MEAN_WORKING_DAYS: Mapping[str, float] = {
    _C.GOV_PROCUREMENT: 3.0,  # "approval within 5 working days" (§5.1)
    _C.FIRST_LOAN: 5.0,
    _C.SUPPLY_CHAIN: 4.0,
    _C.RECEIVABLES: 5.0,
    _C.GUARANTEED: 6.0,
    _C.GREEN: 7.0,
    _C.TECH_CREDIT: 8.0,
    _C.IP_PLEDGE: 10.0,  # patent valuation first
    _C.GUANMAOTONG: 8.0,
    _C.CREDIT_INSURANCE_GUARANTEE: 9.0,
    _C.INVEST_LOAN_GUARANTEE: 12.0,
    _C.LEASING: 14.0,  # sale-leaseback closes in 30–60 days (§5.7)
}
# Institutions that take longer than their category's norm (our assumption).
_SLOWER: Mapping[str, float] = {
    "中国出口信用保险公司东莞办事处": 1.5,
    "中国农业银行东莞分行": 1.3,
    "招商银行东莞分行": 1.2,
    "东莞市科创资本（投贷担合作方）": 1.4,
}


def _category_fit(firm: Mapping[str, Any]) -> dict[ProductCategory, float]:
    """How likely a firm is to pick a category: what it has, it uses."""
    exporter = firm["export_revenue_usd"] > 0
    tech = firm["is_high_tech"] or firm["is_specialized_sme"]
    receivables = firm["core_enterprise_receivables_yuan"] > 0
    return {
        _C.GUARANTEED: 1.0,
        _C.FIRST_LOAN: 3.0 if not firm["has_borrowed_before"] else 0.3,
        _C.GOV_PROCUREMENT: 4.0 if firm["gov_procurement_contracts_yuan"] > 0 else 0.1,
        _C.RECEIVABLES: 2.5 if receivables else 0.15,
        _C.SUPPLY_CHAIN: 2.5 if receivables else 0.15,
        _C.GUANMAOTONG: 4.0 if firm["export_revenue_usd"] >= 10_000_000 else 0.05,
        _C.CREDIT_INSURANCE_GUARANTEE: 3.0 if exporter else 0.1,
        _C.IP_PLEDGE: 2.0 if firm["invention_patents"] + firm["utility_patents"] > 0 else 0.1,
        _C.TECH_CREDIT: 3.0 if tech else 0.2,
        _C.INVEST_LOAN_GUARANTEE: 1.5 if tech else 0.05,
        _C.LEASING: 1.5 if firm["collateral_equipment_yuan"] > 0 else 0.2,
        _C.GREEN: 3.0 if firm["is_green_listed"] else 0.15,
    }


def _size_class(firm: Mapping[str, Any]) -> str:
    return classify_size(
        firm["industry_section"],
        firm["industry_division"],
        employees=firm["employees"],
        revenue_yuan=firm["annual_revenue_yuan"],
        total_assets_yuan=firm["total_assets_yuan"],
    ).value


def _add_working_days(day: date, count: int) -> date:
    while count > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def _round_wan(amount: float, low: int, high: int) -> int:
    return int(min(high, max(low, round(amount / WAN) * WAN)))


def generate_history(
    firms: Sequence[Mapping[str, Any]],
    products: Sequence[tuple[int, Mapping[str, Any]]],
    n_applications: int,
    seed: int,
    start: datetime,
    end: datetime,
    *,
    institution_names: Sequence[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield ``n_applications`` applications with their decisions, oldest first.

    ``firms`` are generate_firms dicts, ``products`` catalogue.products() pairs; the institution
    index of a product looks up its name (for the model's institution bias) in
    ``institution_names``, by default the catalogue's. ``start`` and ``end`` must be tz-aware.
    """
    if start.tzinfo is None or end.tzinfo is None or start >= end:
        raise ValueError("start and end must be tz-aware with start < end")
    candidates = [i for i, firm in enumerate(firms) if firm.get("need_amount_yuan")]
    if n_applications <= 0 or not candidates or not products:
        return
    names = list(institution_names or [inst["name"] for inst in institutions()])
    sampler = _Sampler(firms, products, names, candidates, np.random.default_rng(seed))
    span = (end - start).total_seconds()
    # Beta(1.6, 1) leans toward ``end``: the platform grows, recent months are busier.
    offsets = np.sort(sampler.rng.beta(1.6, 1.0, n_applications) * span)
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    drafts = [sampler.draft(start_utc + timedelta(seconds=float(s))) for s in offsets]
    # Decisions that would land after ``end`` are pending; top up, mostly with the newest ones.
    pending = [d["decided_at"] >= end_utc for d in drafts]
    tau = max(14 * 86_400.0, 0.04 * span)
    weights = [math.exp(-(end_utc - d["submitted_at"]).total_seconds() / tau) for d in drafts]
    open_weight = sum(w for w, p in zip(weights, pending, strict=True) if not p)
    missing = (PENDING_SHARE - STALLED_SHARE) * n_applications - sum(pending)
    scale = max(0.0, missing) / open_weight if open_weight else 0.0
    rolls = sampler.rng.random(n_applications)
    # A firm has at most one open application per product (the registry enforces it), so a
    # second one for the same pair keeps the decision it was drafted with.
    open_pairs: set[tuple[int, int]] = set()
    for draft, weight, is_pending, roll in zip(drafts, weights, pending, rolls, strict=True):
        pair = (draft["firm_index"], draft["product_index"])
        if (is_pending or roll < STALLED_SHARE + scale * weight) and pair not in open_pairs:
            open_pairs.add(pair)
            yield {**draft, **_PENDING}
        elif draft["decided_at"] >= end_utc:  # rare: decided just in time instead
            submitted = draft["submitted_at"]
            yield {**draft, "decided_at": submitted + (end_utc - submitted) / 2}
        else:
            yield draft


_PENDING: Mapping[str, Any] = {
    "outcome": None,
    "decided_at": None,
    "approved_amount_yuan": None,
    "rate_bp": None,
    "term_months": None,
    "rejection_reason": None,
}


class _Sampler:
    """Draws one application at a time; caches each firm's size class and eligibility."""

    def __init__(
        self,
        firms: Sequence[Mapping[str, Any]],
        products: Sequence[tuple[int, Mapping[str, Any]]],
        names: Sequence[str],
        candidates: Sequence[int],
        rng: np.random.Generator,
    ) -> None:
        self.firms, self.products, self.names = firms, products, names
        self.candidates, self.rng = candidates, rng
        self.categories = [ProductCategory(p["category"]) for _, p in products]
        # A category's pull is shared among its products, so a long shelf is not favoured.
        counts = Counter(self.categories)
        self.shelf = np.array([1.0 / counts[c] for c in self.categories])
        self.sizes = {i: _size_class(firms[i]) for i in candidates}
        # Every rule but the age rules is fixed per firm, so check those once for all candidates.
        self.row = {firm_index: row for row, firm_index in enumerate(candidates)}
        self.static_eligible = eligibility_matrix(
            [firms[i] for i in candidates], [p for _, p in products], list(self.sizes.values())
        )
        self.age_rules = age_settings([p for _, p in products])

    def _pick_firm(self, as_of: date) -> int:
        # A firm cannot apply before it exists; redraw a few times, then take the last draw.
        for _ in range(20):
            index = self.candidates[int(self.rng.integers(len(self.candidates)))]
            if as_date(self.firms[index]["established_on"]) < as_of:
                break
        return index

    def _eligibility(self, index: int, as_of: date) -> npt.NDArray[np.bool_]:
        years = years_established(self.firms[index], as_of)
        static: npt.NDArray[np.bool_] = self.static_eligible[self.row[index]]
        return static & meets_age_rules(years, self.age_rules)

    def draft(self, submitted_at: datetime) -> dict[str, Any]:
        """One application submitted at ``submitted_at``, decided as if nothing stays pending."""
        rng, as_of = self.rng, submitted_at.date()
        firm_index = self._pick_firm(as_of)
        firm, size_class = self.firms[firm_index], self.sizes[firm_index]
        # Firms browse by what fits them and mostly apply where they qualify; some misread a rule.
        fit = _category_fit(firm)
        weights = np.array([fit[c] for c in self.categories]) * self.shelf
        weights *= np.where(self._eligibility(firm_index, as_of), 1.0, INELIGIBLE_APPLY_WEIGHT)
        product_index = int(rng.choice(len(weights), p=weights / weights.sum()))
        institution_index, product = self.products[product_index]
        names = self.names
        institution = names[institution_index] if institution_index < len(names) else None

        amount, term = self._request(firm, product)
        assessment = assess_application(
            firm, product, amount, term, size_class, institution_name=institution, as_of=as_of
        )
        category = self.categories[product_index]
        mean_days = _MEAN_WORKING_DAYS[category] * _SLOWER.get(institution or "", 1.0)
        days = int(np.clip(round(float(rng.gamma(2.0, mean_days / 2.0))), 1, 20))
        # Decisions go out in office hours, 09:00–18:00 China time = 01:00–10:00 UTC.
        decided_at = datetime.combine(_add_working_days(as_of, days), time(1), UTC)
        decided_at += timedelta(seconds=int(rng.integers(9 * 3600)))
        rolls = rng.random(4)
        return {
            "firm_index": firm_index,
            "product_index": product_index,
            "requested_amount_yuan": amount,
            "requested_term_months": term,
            "submitted_at": submitted_at,
            "decided_at": decided_at,
            **_decision(firm, product, amount, term, assessment, rolls),
        }

    def _request(self, firm: Mapping[str, Any], product: Mapping[str, Any]) -> tuple[int, int]:
        wish = firm["need_amount_yuan"] * float(self.rng.lognormal(0.0, 0.3))
        cap = amount_cap_yuan(firm, product)
        rolls = self.rng.random(2)
        # Most applicants know their contract or receivable book and stay under the cap.
        if cap is not None and rolls[0] < 0.9:
            wish = min(wish, cap * (0.5 + 0.5 * float(rolls[1])))
        amount = _round_wan(wish, product["amount_min_yuan"], product["amount_max_yuan"])
        low, high = product["term_min_months"], product["term_max_months"]
        return amount, int(min(high, max(low, firm["need_term_months"])))


def _decision(
    firm: Mapping[str, Any],
    product: Mapping[str, Any],
    amount: int,
    term: int,
    assessment: Assessment,
    rolls: npt.NDArray[np.float64],
) -> dict[str, Any]:
    """The institution's answer: a coin flip with the hidden model's probability."""
    if rolls[0] < assessment.probability:
        return {
            "outcome": "approved",
            "approved_amount_yuan": _approved_amount(firm, product, amount, float(rolls[1])),
            "rate_bp": _rate_bp(firm, product, float(rolls[2])),
            "term_months": term,
            "rejection_reason": None,
        }
    # A few rejections are about the file, not the firm.
    if rolls[3] < 0.06:
        reason = RejectionReason.INCOMPLETE_DOCUMENTS
    elif rolls[3] < 0.08:
        reason = RejectionReason.OTHER
    else:
        reason = likely_rejection_reason(assessment.terms, assessment.violations)
    return {
        "outcome": "rejected",
        "approved_amount_yuan": None,
        "rate_bp": None,
        "term_months": None,
        "rejection_reason": reason.value,
    }


def _approved_amount(
    firm: Mapping[str, Any], product: Mapping[str, Any], requested: int, roll: float
) -> int:
    low = int(product["amount_min_yuan"])
    # Two in three approvals grant the full request; the rest are cut to 50–95% of it.
    granted = float(requested) if roll < 0.65 else requested * (0.5 + 0.45 * (roll - 0.65) / 0.35)
    cap = amount_cap_yuan(firm, product)
    if cap is not None:
        granted = min(granted, float(cap))
    return int(min(requested, max(low, math.floor(granted / WAN) * WAN)))


def _rate_bp(firm: Mapping[str, Any], product: Mapping[str, Any], roll: float) -> int:
    low, high = int(product["rate_min_bp"]), int(product["rate_max_bp"])
    rating = firm.get("credit_rating")
    # Better ratings price nearer the floor; unrated firms sit a little above the middle.
    quality = 0.45 if rating is None else (CreditRating(rating).rank - 1) / (len(CreditRating) - 1)
    position = min(1.0, max(0.0, 1.0 - quality + 0.3 * (roll - 0.5)))
    return int(min(high, max(low, round((low + position * (high - low)) / 5) * 5)))
