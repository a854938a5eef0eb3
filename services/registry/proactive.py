"""Proactive matching, the registry's half: which product writes start a scan, and what a scan
page writes (``match.new_product`` events and the cursor, in one transaction).

The dispatcher (services/registry/dispatcher/scanner.py) runs the scans: it pages through the
firms that consented to matching and stated a need, asks matching which of them the product
newly qualifies for, and hands each page's answer to ``record_page``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.registry import events
from services.registry.models import Firm, MatchScan, Product
from services.registry.models.columns import table_of, utcnow
from services.registry.registers.provenance import effective_columns, published_registers
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import NewlyQualifiedFirm
from shared.schemas.product import ProductFeatures
from shared.schemas.registers import REGISTERED_FIELDS
from shared.schemas.webhooks import EventType

PENDING, DONE, SUPERSEDED = "pending", "done", "superseded"
FIRM = table_of(Firm)
FIRM_FEATURES = tuple(FirmFeatures.model_fields)


def features(product: Product) -> dict[str, Any]:
    """The product as matching ranks it, as JSON."""
    return ProductFeatures.model_validate(product, from_attributes=True).model_dump(mode="json")


def listed(product: Product) -> bool:
    return product.active and product.archived_at is None


def product_written(session: Session, product: Product, before: dict[str, Any] | None) -> None:
    """Call after a product write, before its commit: schedules a scan when the product is
    listed and its rules or terms differ from ``before`` (its features before the write, None
    when it was not listed). A change that alters nothing matching reads starts none.

    A scan still pending for the product is superseded, and the new one compares against that
    scan's ``before``: a firm the earlier change reached is not lost because a second change
    came before it was told. (One the earlier scan told already may be told again of the
    newer version.)
    """
    assert product.id is not None
    pending = session.exec(
        select(MatchScan)
        .where(MatchScan.product_id == product.id)
        .where(MatchScan.status == PENDING)
        .with_for_update()
    ).all()
    after = features(product) if listed(product) else None
    if after is not None and before is not None and _ranked_alike(before, after):
        for scan in pending:  # still the right question, about the newer version
            scan.product_version = product.version
            scan.after = after
            session.add(scan)
        return
    for scan in pending:
        before = scan.before
        scan.status = SUPERSEDED
        scan.finished_at = utcnow()
        session.add(scan)
    if after is None or (before is not None and _ranked_alike(before, after)):
        return
    session.add(
        MatchScan(
            product_id=product.id,
            product_version=product.version,
            before=before,
            after=after,
            created_at=utcnow(),
            next_attempt_at=utcnow(),
        )
    )


def _ranked_alike(before: dict[str, Any], after: dict[str, Any]) -> bool:
    # The name is not a rule or a term: renaming a product reaches no one new.
    return {k: v for k, v in before.items() if k != "name"} == {
        k: v for k, v in after.items() if k != "name"
    }


def firms_page(
    session: Session, after_firm_id: int, limit: int
) -> list[tuple[int, dict[str, Any], list[str]]]:
    """(id, features, verified fields) of the next ``limit`` firms past ``after_firm_id`` that
    consented to matching and stated a need, by id; gating attributes as the registers read
    today, and those a published register gives (the same for every firm)."""
    conn = session.connection()
    published = published_registers(conn)
    verified = [name for name, kind in REGISTERED_FIELDS.items() if kind.value in published]
    features = effective_columns(conn, FIRM, FIRM_FEATURES)
    stmt = (
        sa.select(FIRM.c.id, *features)
        .where(FIRM.c.id > after_firm_id)
        .where(FIRM.c.consent_matching.is_(True))
        .where(FIRM.c.need_amount_yuan.is_not(None))
        .order_by(FIRM.c.id)
        .limit(limit)
    )
    out = []
    for row in session.execute(stmt):
        values = dict(row._mapping)
        firm_id = values.pop("id")
        out.append((firm_id, values, verified))
    return out


def record_page(
    session: Session,
    scan: MatchScan,
    last_firm_id: int,
    found: Sequence[NewlyQualifiedFirm],
    model_version: str,
    *,
    finished: bool,
    now: datetime,
) -> int:
    """One page's events and the scan's cursor, in the caller's transaction; the events
    written. Each firm is read again here: one whose consent was withdrawn, whose need was
    dropped or which was erased since the page was read is not told."""
    product = session.get(Product, scan.product_id)
    written = 0
    current = (
        scan.status == PENDING
        and product is not None
        and listed(product)
        and product.version == scan.product_version
    )
    if current:
        assert product is not None
        ids = [f.firm_id for f in found]
        owners: dict[int | None, int] = dict(
            session.exec(
                select(Firm.id, Firm.owner_principal_id)
                .where(col(Firm.id).in_(ids))
                .where(col(Firm.consent_matching).is_(True))
                .where(col(Firm.need_amount_yuan).is_not(None))
            ).all()
        )
        for firm in found:
            owner = owners.get(firm.firm_id)
            if owner is None:
                continue
            data = {
                "firm_id": firm.firm_id,
                "product_id": scan.product_id,
                "version": scan.product_version,
                "institution_id": product.institution_id,
                "category": product.category,
                "approval_probability": firm.approval_probability,
                "effective_cost": firm.cost.model_dump(mode="json"),
                "model_version": model_version,
            }
            events.emit(session, EventType.MATCH_NEW_PRODUCT, data, [owner])
            written += 1
        scan.cursor_firm_id = last_firm_id
    else:
        # Unlisted, deleted or changed again since the page was read: a newer scan speaks.
        finished = True
        if scan.status == PENDING:
            scan.status = SUPERSEDED
    scan.notified += written
    scan.attempts = 0
    scan.last_error = None
    scan.lease_until = None
    if finished:
        if scan.status == PENDING:
            scan.status = DONE
        scan.finished_at = now
    session.add(scan)
    return written
