"""Closed vocabularies that the registry stores and the matching service reasons about."""

from __future__ import annotations

from enum import StrEnum


class CreditRating(StrEnum):
    """Bank-style external rating, best first; ``rank`` orders them (higher is better)."""

    AAA = "AAA"
    AA = "AA"
    A = "A"
    BBB = "BBB"
    BB = "BB"
    B = "B"
    C = "C"

    @property
    def rank(self) -> int:
        return len(_RATING_ORDER) - _RATING_ORDER.index(self)


_RATING_ORDER = list(CreditRating)


class CollateralKind(StrEnum):
    NONE = "none"  # pure credit
    REAL_ESTATE = "real_estate"
    EQUIPMENT = "equipment"
    INTELLECTUAL_PROPERTY = "intellectual_property"
    RECEIVABLES = "receivables"
    PROCUREMENT_CONTRACT = "procurement_contract"
    INSURANCE_POLICY = "insurance_policy"
    CARBON_QUOTA = "carbon_quota"
    GUARANTEE = "guarantee"


class AmountCapBasis(StrEnum):
    """What a product's loan size is capped against (e.g. 政采贷 ≤ contract value)."""

    NONE = "none"
    GOV_PROCUREMENT_CONTRACTS = "gov_procurement_contracts"
    RECEIVABLES = "receivables"
    EXPORT_REVENUE = "export_revenue"
    COLLATERAL = "collateral"
    ANNUAL_REVENUE = "annual_revenue"


class PrincipalRole(StrEnum):
    PORTAL = "portal"
    INSTITUTION = "institution"
    OFFICIAL = "official"
    ADMIN = "admin"


class RegisterKind(StrEnum):
    """An official list that confirms (or corrects) what portals declare about firms."""

    HIGH_TECH = "high_tech"  # 高新技术企业认定名单: certificates, three years each
    SPECIALIZED_SME = "specialized_sme"  # 专精特新 (municipal, provincial, national 小巨人)
    GREEN_LIST = "green_list"  # 绿色企业名录 (action plan item 44)
    GOV_PROCUREMENT_AWARDS = "gov_procurement_awards"  # 政府采购中标合同 (item 63, 政采贷)


class SpecializedLevel(StrEnum):
    MUNICIPAL = "municipal"
    PROVINCIAL = "provincial"
    NATIONAL = "national"  # 专精特新"小巨人"


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class DecisionOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class RejectionReason(StrEnum):
    INSUFFICIENT_REVENUE = "insufficient_revenue"
    INSUFFICIENT_COLLATERAL = "insufficient_collateral"
    POOR_CREDIT_HISTORY = "poor_credit_history"
    HIGH_LEVERAGE = "high_leverage"
    INELIGIBLE_PRODUCT = "ineligible_product"
    INCOMPLETE_DOCUMENTS = "incomplete_documents"
    AMOUNT_TOO_HIGH = "amount_too_high"
    RISK_APPETITE = "risk_appetite"
    OTHER = "other"
