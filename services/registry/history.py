"""Import of an institution's past decisions (NDJSON): training data, in their own table.

The mechanics are the firms' bulk import's (services/registry/bulk.py): per-line results,
each batch all-or-nothing in one transaction with its ``import_batch`` row, resumable by
``import_id``. ``prepare_history_batch`` validates what needs no database (the line's shape,
dates, the decision's rules) and computes the firm's snapshot as of ``submitted_at``;
``write_history_batch`` checks each line's product (the institution's own, within its
bounds) and writes the batch, or refuses it whole.

A past decision is held once per institution, whatever the import that brought it: each line
gets a ``fingerprint`` (SHA-256 of its canonical form), unique per institution. A line whose
fingerprint the institution already holds (an earlier import under any ``import_id``, an
earlier batch of this request, or an earlier line of its own batch) is not written: it answers
``duplicate`` with the ``id`` of the row that holds it, and its batch still commits the others.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, date
from functools import partial
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.registry import audit
from services.registry.bulk import (
    BatchOutcome,
    LineInvalid,
    NumberedLine,
    PreparedBatch,
    committed_before,
    decode_line,
    record_batch,
    rejected,
)
from services.registry.db import write_session
from services.registry.models import ImportedDecision, Product
from services.registry.models.columns import table_of, utcnow
from services.registry.models.firm import derive_size
from services.registry.models.product import DECISION_TERM_BOUNDS, product_snapshot
from shared.china_date import china_date_of
from shared.criteria import years_between
from shared.errors import validation_errors
from shared.schemas.application import DecisionCreate
from shared.schemas.firm import FirmAttributes
from shared.schemas.history import HistoryFirm, HistoryLine

TABLE = table_of(ImportedDecision)
SOURCE = "imported"
LineErrors = list[dict[str, str]]
# A batch that loses a race on the fingerprint index (a concurrent import committed one of its
# lines first) is tried again: its next lookup finds that line. Each retry follows another
# import's commit, so a few suffice.
WRITE_ATTEMPTS = 3


def credit_code_hash(code: str, key: bytes) -> str:
    """HMAC-SHA256 of a normalised credit code (hex): the same firm gives the same hash under
    one key, and without the key a list of codes cannot be hashed to find it."""
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def firm_snapshot(firm: HistoryFirm, line: HistoryLine) -> dict[str, Any]:
    """The features as of submitted_at, in the shape of a live application's snapshot
    (services.registry.firms.snapshot_of): size class from the figures given, age then."""
    snap: dict[str, Any] = {}
    for key in FirmAttributes.model_fields:
        value = getattr(firm, key)
        snap[key] = value.isoformat() if isinstance(value, date) else value
    snap["size_class"], _ruleset = derive_size(snap)
    submitted = line.submitted_at
    age = years_between(firm.established_on, china_date_of(submitted))
    snap["years_established"] = round(age, 2)
    snap["snapshot_at"] = submitted.isoformat()
    return snap


def fingerprint(values: dict[str, Any]) -> str:
    """SHA-256 (hex) of what a parsed line says: the product, the firm (its credit code's hash
    and its features as given), the terms asked, both times in UTC, and the decision. Parsed
    values, not the raw text: key order, spacing, a time's offset or a default written out
    change nothing. The snapshot's derived values (size class, age, snapshot_at) are left out:
    they follow from the rest under the size rules of the day, and a change of those rules
    must not make a re-imported line new. Another hash key (FINMATCH_CREDIT_CODE_HASH_KEY)
    gives other fingerprints to the lines with a credit code."""
    canonical = {
        "v": 1,  # the form's version: another form is another fingerprint, never a collision
        "product_id": values["product_id"],
        "credit_code_hash": values["credit_code_hash"],
        "submitted_at": values["submitted_at"].astimezone(UTC).isoformat(),
        "decided_at": values["decided_at"].astimezone(UTC).isoformat(),
        "requested_amount_yuan": values["requested_amount_yuan"],
        "requested_term_months": values["requested_term_months"],
        "decision": {field: values[field] for field in DecisionCreate.model_fields},
        "firm": {field: values["firm_snapshot"][field] for field in FirmAttributes.model_fields},
    }
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def parse_history_line(raw: bytes, key: bytes) -> dict[str, Any]:
    """One line into the values an imported_decision row stores (but the product's, which
    need the database); raises LineInvalid naming the fields."""
    data = decode_line(raw)
    try:
        line = HistoryLine.model_validate(data)
    except ValidationError as exc:
        raise LineInvalid(validation_errors(exc.errors())) from exc
    code = line.firm.credit_code
    decision = line.decision.model_dump(mode="json")  # the enums as the text columns hold
    values = {
        "product_id": line.product_id,
        "credit_code_hash": None if code is None else credit_code_hash(code, key),
        "requested_amount_yuan": line.requested_amount_yuan,
        "requested_term_months": line.requested_term_months,
        "firm_snapshot": firm_snapshot(line.firm, line),
        "submitted_at": line.submitted_at,
        "decided_at": line.decided_at,
        **decision,
    }
    return values | {"fingerprint": fingerprint(values)}


def prepare_history_batch(
    batch_no: int, lines: Sequence[NumberedLine], *, key: bytes
) -> PreparedBatch:
    """Parse and validate every line of a batch (no database)."""
    digest = hashlib.sha256(b"\n".join(raw for _n, raw in lines)).hexdigest()
    batch = PreparedBatch(batch_no=batch_no, line_numbers=[n for n, _ in lines], digest=digest)
    for line_no, raw in lines:
        try:
            values = parse_history_line(raw, key)
        except LineInvalid as exc:
            batch.invalid[line_no] = exc.errors
            continue
        batch.rows.append(values)
        batch.row_lines.append(line_no)
    return batch


def _bound_error(field: str, value: int, low: int, high: int, unit: str) -> dict[str, str]:
    return {
        "field": field,
        "message": f"{field} {value} {unit} is outside the product's bounds ({low}–{high} {unit})",
    }


def product_errors(row: dict[str, Any], product: Product | None, institution_id: int) -> LineErrors:
    """What is wrong with a line against its product: another institution's product, or an
    archived one, is "not found" (never saying that it exists); the requested amount and
    term lie within the product's bounds, and so do an approval's figures."""
    product_id = row["product_id"]
    if (
        product is None
        or product.institution_id != institution_id
        or product.archived_at is not None
    ):
        return [{"field": "product_id", "message": f"product {product_id} not found"}]
    errors: LineErrors = []
    asked = (
        ("requested_amount_yuan", product.amount_min_yuan, product.amount_max_yuan, "yuan"),
        ("requested_term_months", product.term_min_months, product.term_max_months, "months"),
    )
    for field, low, high, unit in asked:
        if not low <= row[field] <= high:
            errors.append(_bound_error(field, row[field], low, high, unit))
    for field, low_key, high_key, unit in DECISION_TERM_BOUNDS:
        value, low, high = row[field], getattr(product, low_key), getattr(product, high_key)
        if value is not None and not low <= value <= high:
            errors.append(_bound_error(f"decision.{field}", value, low, high, unit))
    return errors


def _products(session: Session, ids: set[int]) -> dict[int, Product]:
    found = session.exec(select(Product).where(col(Product.id).in_(sorted(ids))))
    return {product.id: product for product in found if product.id is not None}


def _held(session: Session, institution_id: int, fingerprints: list[str]) -> dict[str, int]:
    """The institution's rows among these fingerprints: fingerprint → the row's id."""
    held: dict[str, int] = {}
    for start in range(0, len(fingerprints), 900):  # below SQLite's bound-parameter limit
        stmt = sa.select(TABLE.c.fingerprint, TABLE.c.id).where(
            TABLE.c.institution_id == institution_id,
            TABLE.c.fingerprint.in_(fingerprints[start : start + 900]),
        )
        for fp, row_id in session.execute(stmt):
            held[fp] = row_id
    return held


def write_history_batch(
    engine: Engine,
    batch: PreparedBatch,
    *,
    principal_id: int,
    institution_id: int,
    import_id: str,
    request_id: str | None,
) -> BatchOutcome:
    """Write one validated batch in its own transaction, or refuse it whole. A transaction
    that loses a race (its import_batch row or a line's fingerprint committed meanwhile by a
    concurrent request: the unique indexes decide) is tried again, and then finds the batch
    already committed or the line held: a ``duplicate``, never an error."""
    write = partial(
        _write_once,
        engine,
        batch,
        principal_id=principal_id,
        institution_id=institution_id,
        import_id=import_id,
        request_id=request_id,
    )
    for _retry in range(WRITE_ATTEMPTS - 1):
        with suppress(IntegrityError):
            return write()
    return write()  # the last attempt's IntegrityError, if any, is no race lost: it propagates


def _write_once(
    engine: Engine,
    batch: PreparedBatch,
    *,
    principal_id: int,
    institution_id: int,
    import_id: str,
    request_id: str | None,
) -> BatchOutcome:
    with write_session(engine) as session:
        done = committed_before(session, batch, principal_id=principal_id, import_id=import_id)
        if done is not None:
            return done
        products = _products(session, {row["product_id"] for row in batch.rows})
        invalid = dict(batch.invalid)
        for line, row in zip(batch.row_lines, batch.rows, strict=True):
            errors = product_errors(row, products.get(row["product_id"]), institution_id)
            if errors:
                invalid[line] = errors
        if invalid:
            return rejected(batch, invalid)

        # Held already (an earlier import, an earlier batch) → that row's id; else the batch's
        # first line with the fingerprint is written, and its later ones point to that row.
        held = _held(session, institution_id, sorted({row["fingerprint"] for row in batch.rows}))
        writes: dict[str, int] = {}  # fingerprint → the line that writes it
        now = utcnow()
        new: list[dict[str, Any]] = []
        for line, row in zip(batch.row_lines, batch.rows, strict=True):
            if row["fingerprint"] in held or row["fingerprint"] in writes:
                continue
            writes[row["fingerprint"]] = line
            new.append(
                row
                | {
                    "institution_id": institution_id,
                    "imported_by_principal_id": principal_id,
                    "import_id": import_id,
                    "line": line,
                    "product_snapshot": product_snapshot(products[row["product_id"]]),
                    "imported_at": now,
                }
            )
        if new:
            insert = sa.insert(TABLE).returning(TABLE.c.id, sort_by_parameter_order=True)
            ids = session.execute(insert, new).scalars()
            held |= {row["fingerprint"]: row_id for row, row_id in zip(new, ids, strict=True)}
        record_batch(session, batch, principal_id=principal_id, import_id=import_id)
        audit.record(
            session,
            principal_id=principal_id,
            action="import_history",
            entity="imported_decision",
            request_id=request_id,
            detail={
                "import_id": import_id,
                "batch_no": batch.batch_no,
                "imported": len(new),
                "duplicate": len(batch.rows) - len(new),
            },
        )
        session.commit()
    results = [
        {
            "line": line,
            "status": "imported" if writes.get(row["fingerprint"]) == line else "duplicate",
            "id": held[row["fingerprint"]],
            "source": SOURCE,
        }
        for line, row in zip(batch.row_lines, batch.rows, strict=True)
    ]
    return BatchOutcome(results=results)
