"""The API's closed vocabularies."""

from __future__ import annotations

from enum import StrEnum


class AmountCapBasis(StrEnum):
    NONE = "none"
    GOV_PROCUREMENT_CONTRACTS = "gov_procurement_contracts"
    RECEIVABLES = "receivables"
    EXPORT_REVENUE = "export_revenue"
    COLLATERAL = "collateral"
    ANNUAL_REVENUE = "annual_revenue"


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class CollateralKind(StrEnum):
    NONE = "none"
    REAL_ESTATE = "real_estate"
    EQUIPMENT = "equipment"
    INTELLECTUAL_PROPERTY = "intellectual_property"
    RECEIVABLES = "receivables"
    PROCUREMENT_CONTRACT = "procurement_contract"
    INSURANCE_POLICY = "insurance_policy"
    CARBON_QUOTA = "carbon_quota"
    GUARANTEE = "guarantee"


class ConsentStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class CreditRating(StrEnum):
    AAA = "AAA"
    AA = "AA"
    A = "A"
    BBB = "BBB"
    BB = "BB"
    B = "B"
    C = "C"


class DecisionOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    CANCELLED = "cancelled"


class Dimension(StrEnum):
    TOWN = "town"
    CATEGORY = "category"
    INSTITUTION = "institution"
    SIZE_CLASS = "size_class"
    INDUSTRY = "industry"
    MONTH = "month"


class DisabledReason(StrEnum):
    GONE_410 = "gone_410"
    FAILING_5_DAYS = "failing_5_days"


class EligibilityStatus(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    UNKNOWN = "unknown"


class EventType(StrEnum):
    APPLICATION_SUBMITTED = "application.submitted"
    APPLICATION_WITHDRAWN = "application.withdrawn"
    APPLICATION_DECIDED = "application.decided"
    MATCH_NEW_PRODUCT = "match.new_product"
    MODEL_PROMOTED = "model.promoted"
    FIRM_VERIFICATION_CHANGED = "firm.verification_changed"
    CONSENT_REVOKED = "consent.revoked"
    WEBHOOK_PING = "webhook.ping"
    WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint_disabled"


class InstitutionKind(StrEnum):
    BANK = "bank"
    INSURER = "insurer"
    GUARANTOR = "guarantor"
    LESSOR = "lessor"
    OTHER = "other"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobTrigger(StrEnum):
    ADMIN = "admin"
    AUTO = "auto"
    CLI = "cli"


class PrincipalRole(StrEnum):
    PORTAL = "portal"
    INSTITUTION = "institution"
    OFFICIAL = "official"
    ADMIN = "admin"


class ProductCategory(StrEnum):
    IP_PLEDGE = "ip_pledge"
    GOV_PROCUREMENT = "gov_procurement"
    GUANMAOTONG = "guanmaotong"
    CREDIT_INSURANCE_GUARANTEE = "credit_insurance_guarantee"
    RECEIVABLES = "receivables"
    SUPPLY_CHAIN = "supply_chain"
    LEASING = "leasing"
    GREEN = "green"
    FIRST_LOAN = "first_loan"
    TECH_CREDIT = "tech_credit"
    GUARANTEED = "guaranteed"
    INVEST_LOAN_GUARANTEE = "invest_loan_guarantee"


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


class SizeClass(StrEnum):
    LARGE = "large"
    MEDIUM = "medium"
    SMALL = "small"
    MICRO = "micro"


class ProvenanceStatus(StrEnum):
    """Where a gating attribute's value comes from."""

    DECLARED = "declared"
    VERIFIED = "verified"
    CONTRADICTED = "contradicted"


class RegisterKind(StrEnum):
    """An official list that confirms (or corrects) what portals declare about firms."""

    HIGH_TECH = "high_tech"
    SPECIALIZED_SME = "specialized_sme"
    GREEN_LIST = "green_list"
    GOV_PROCUREMENT_AWARDS = "gov_procurement_awards"
