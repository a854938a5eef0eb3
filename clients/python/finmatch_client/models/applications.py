"""Applications with consent, institutions' decisions, consents, and past decisions to import."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from finmatch_client.models._base import Answer, Body
from finmatch_client.models.enums import (
    ApplicationStatus,
    ConsentStatus,
    DecisionOutcome,
    EligibilityStatus,
    RejectionReason,
)
from finmatch_client.models.firms import FirmFeaturesBody
from finmatch_client.models.matching import UnmetCriterion


class ApplicationCreate(Body):
    """``consent_share_profile`` must be true; ``strict`` refuses an ineligible application
    (422 ``not_eligible``)."""

    firm_id: int
    product_id: int
    requested_amount_yuan: int
    requested_term_months: int
    consent_share_profile: bool
    strict: bool = False


class ApplicationEligibility(Answer):
    """Matching's eligibility rules for the firm and product, evaluated at submission."""

    status: EligibilityStatus
    unmet: list[UnmetCriterion] = Field(default_factory=list)


class ApplicationPublic(Answer):
    id: int
    firm_id: int | None
    product_id: int
    institution_id: int
    owner_principal_id: int
    status: ApplicationStatus
    requested_amount_yuan: int
    requested_term_months: int
    consent_share_profile: bool
    consent_text_version: str
    consent_at: datetime
    consent_withdrawn_at: datetime | None
    town_code: str
    industry_section: str
    size_class: str
    is_first_loan: bool
    submitted_at: datetime
    decided_at: datetime | None
    withdrawn_at: datetime | None
    eligibility: ApplicationEligibility
    version: int


class DecisionCreate(Body):
    """Approved: amount, rate and term; rejected: a reason."""

    outcome: DecisionOutcome
    approved_amount_yuan: int | None = None
    rate_bp: int | None = None
    term_months: int | None = None
    rejection_reason: RejectionReason | None = None
    note: str | None = None


class DecisionPublic(Answer):
    id: int
    application_id: int
    outcome: DecisionOutcome
    approved_amount_yuan: int | None = None
    rate_bp: int | None = None
    term_months: int | None = None
    rejection_reason: RejectionReason | None = None
    note: str | None = None
    decided_by_principal_id: int
    decided_at: datetime


class ConsentPublic(Answer):
    """Which institution received the firm's profile, through which applications, and whether
    it may still read it."""

    id: int
    firm_id: int
    institution_id: int
    institution_name: str
    application_ids: list[int]
    granted_at: datetime
    revoked_at: datetime | None
    status: ConsentStatus


class HistoryFirm(FirmFeaturesBody):
    """The firm's features when it applied; the credit code, optional, is stored only as a
    keyed hash."""

    credit_code: str | None = None


class HistoryLine(Body):
    """One line of ``POST /v1/decisions/history``: a past application and its decision
    (times with their UTC offset, in the past, decided not before submitted)."""

    product_id: int
    firm: HistoryFirm
    requested_amount_yuan: int
    requested_term_months: int
    submitted_at: datetime
    decided_at: datetime
    decision: DecisionCreate
