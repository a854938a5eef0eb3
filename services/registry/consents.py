"""Consent rules: granted by applying, listed and revoked by the firm's portal (PIPL art. 15).

A consent covers one firm and one institution. The first application of the firm to one of
that institution's products grants it; later applications join it while it stands. Revoking
ends the institution's reads of the firm (its applications under the consent get
``consent_withdrawn_at``, which is what ``firms.firm_visible_to`` reads), and takes the profile
out of the ``application.submitted`` events that carried it to that institution, so that a
delivery still pending, or a redelivery, goes without it; and tells the institution, once
(``consent.revoked``), that it must stop processing the profile. The applications and
decisions stay (statistics, and the institution's own record of what it decided).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.registry import audit, events
from services.registry.models import Application, Consent, Firm, Institution, Principal
from services.registry.models.columns import utcnow
from shared.error_codes import ErrorCode
from shared.errors import Conflict, NotFound
from shared.schemas.consent import ConsentPublic, ConsentStatus
from shared.schemas.webhooks import ConsentEndReason


def grant(session: Session, firm: Firm, institution_id: int, at: datetime) -> Consent:
    """The standing consent of ``firm`` for ``institution_id``, locked until the caller
    commits (a revocation then waits for the application joining it, or the application sees
    the revocation and grants a new consent); created if there is none."""
    assert firm.id is not None
    standing = _standing(session, firm.id, institution_id)
    if standing is not None:
        return standing
    consent = Consent(firm_id=firm.id, institution_id=institution_id, granted_at=at)
    try:
        with session.begin_nested():  # a savepoint: losing the race below undoes this only
            session.add(consent)
    except IntegrityError:
        # Another application of this firm to this institution granted it first (PostgreSQL
        # made this insert wait for its commit): join that one.
        standing = _standing(session, firm.id, institution_id)
        if standing is None:  # it was revoked meanwhile as well: let the client retry
            raise Conflict(
                "a consent for this institution changed concurrently; retry",
                code=ErrorCode.CONCURRENT_CREATE,
                field="product_id",
            ) from None
        return standing
    return consent


def _standing(session: Session, firm_id: int, institution_id: int) -> Consent | None:
    return session.exec(
        select(Consent)
        .where(Consent.firm_id == firm_id)
        .where(Consent.institution_id == institution_id)
        .where(col(Consent.revoked_at).is_(None))
        .with_for_update()
    ).first()


def end_with_erasure(session: Session, firm_id: int) -> int:
    """The firm's profile is being erased: each standing consent ends now, and its institution
    is told once (``consent.revoked``, reason ``erased``) to delete the profile it holds.
    Consents revoked before were told already. Returns how many ended."""
    standing = session.exec(
        select(Consent)
        .where(Consent.firm_id == firm_id)
        .where(col(Consent.revoked_at).is_(None))
        .order_by(col(Consent.id))
        .with_for_update()
    ).all()
    now = utcnow()
    for consent in standing:
        consent.revoked_at = now
        events.consent_revoked(session, consent, ConsentEndReason.ERASED)
    return len(standing)


def consent_of_firm(
    session: Session, firm: Firm, consent_id: int, *, lock: bool = False
) -> Consent:
    """One of the firm's consents, else 404 (another firm's consent id is as absent)."""
    consent = session.get(Consent, consent_id, with_for_update=lock)
    if consent is None or consent.firm_id != firm.id:
        raise NotFound(f"consent {consent_id} not found")
    return consent


def revoke(
    session: Session,
    firm: Firm,
    consent: Consent,
    principal: Principal,
    request_id: str | None,
) -> Consent:
    """Revoke the consent (the caller holds its row lock and commits). Revoking a revoked
    consent changes nothing: it keeps its first ``revoked_at`` and emits no second event."""
    if consent.revoked_at is not None:
        return consent
    now = utcnow()
    consent.revoked_at = now
    session.add(consent)
    # Bulk, in the database: an application joining the consent meanwhile waited for its lock.
    session.execute(
        sa.update(Application)
        .where(col(Application.consent_id) == consent.id)
        .where(col(Application.consent_withdrawn_at).is_(None))
        .values(consent_withdrawn_at=now, version=Application.version + 1)
        .execution_options(synchronize_session=False)
    )
    assert firm.id is not None
    dropped = events.forget_firm(session, firm.id, institution_id=consent.institution_id)
    events.consent_revoked(session, consent)
    audit.record(
        session,
        principal_id=principal.id,
        action="revoke",
        entity="consent",
        entity_id=consent.id,
        request_id=request_id,
        detail={
            "firm_id": firm.id,
            "institution_id": consent.institution_id,
            "events_without_profile": dropped,
        },
    )
    session.flush()
    return consent


def public(session: Session, consents: Sequence[Consent]) -> list[ConsentPublic]:
    """The consents as the firm's portal reads them: with the institution's name and the
    applications under each (two queries for the page, never one per consent)."""
    ids = [consent.id for consent in consents if consent.id is not None]
    applications: dict[int, list[int]] = defaultdict(list)
    if ids:
        rows = session.exec(
            select(Application.consent_id, Application.id)
            .where(col(Application.consent_id).in_(ids))
            .order_by(col(Application.id))
        )
        for consent_id, application_id in rows:
            if consent_id is not None and application_id is not None:
                applications[consent_id].append(application_id)
    institution_ids = sorted({consent.institution_id for consent in consents})
    names = dict(
        session.exec(
            select(Institution.id, Institution.name).where(col(Institution.id).in_(institution_ids))
        ).all()
    )
    return [
        ConsentPublic(
            id=consent.id or 0,
            firm_id=consent.firm_id,
            institution_id=consent.institution_id,
            institution_name=names.get(consent.institution_id, ""),
            application_ids=applications.get(consent.id or 0, []),
            granted_at=consent.granted_at,
            revoked_at=consent.revoked_at,
            status=ConsentStatus.ACTIVE if consent.revoked_at is None else ConsentStatus.REVOKED,
        )
        for consent in consents
    ]


# Applications written without the API (the demo seed): one standing consent per firm and
# institution, granted at the first of them, as if each had been made through POST.
_GRANT_MISSING = sa.text(
    """
    INSERT INTO consent (firm_id, institution_id, granted_at)
    SELECT a.firm_id, a.institution_id, MIN(a.consent_at)
    FROM application a
    WHERE a.firm_id IS NOT NULL AND a.consent_id IS NULL
      AND NOT EXISTS (
        SELECT 1 FROM consent c
        WHERE c.firm_id = a.firm_id AND c.institution_id = a.institution_id
          AND c.revoked_at IS NULL
      )
    GROUP BY a.firm_id, a.institution_id
    """
)
_LINK_MISSING = sa.text(
    """
    UPDATE application SET consent_id = (
        SELECT c.id FROM consent c
        WHERE c.firm_id = application.firm_id AND c.institution_id = application.institution_id
          AND c.revoked_at IS NULL
    )
    WHERE firm_id IS NOT NULL AND consent_id IS NULL
    """
)


def grant_for_unlinked(session: Session) -> int:
    """Give the applications that have no consent yet the standing one of their firm and
    institution (created if need be); the number of applications linked."""
    session.execute(_GRANT_MISSING)
    linked = session.execute(_LINK_MISSING)
    return int(linked.rowcount)  # type: ignore[attr-defined]
