"""Reading an upload's lines (NDJSON or CSV) into register entries, one batch at a time.

Two kinds of failure, as the upload's contract says: a line whose credit code is invalid (its
check character, its length, a duplicate) is an error of that line, and the upload goes on;
anything else wrong (an unknown field or column, a bad date, a missing field, malformed JSON
or CSV) is the file's fault, so the upload stops with a 422 naming the line and the field.
The batches before it stay staged, unpublished: fix the file and resend with the same
``upload_id``.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from services.registry.bulk import LineInvalid, NumberedLine, PreparedBatch, decode_line
from shared.error_codes import ErrorCode
from shared.errors import Unprocessable, validation_errors
from shared.schemas.registers import RegisterLine
from shared.vocab.credit_code import InvalidCreditCode, normalize_credit_code

MAX_REPORTED = 20  # errors a refused upload lists (the first ones)
CSV_ENCODINGS = {"utf-8": "utf-8-sig", "utf8": "utf-8-sig", "gb18030": "gb18030", "gbk": "gb18030"}

Reader = Callable[[bytes], RegisterLine]


class FileInvalid(Exception):
    """A line the whole upload is refused for: ``errors`` name the field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("invalid file")
        self.errors = errors


def _validated(model: type[RegisterLine], data: dict[str, Any], *, strings: bool) -> RegisterLine:
    try:
        if strings:
            return model.model_validate_strings(data)
        return model.model_validate(data)
    except ValidationError as exc:
        errors = validation_errors(exc.errors())
        if all(error["field"] == "credit_code" for error in errors):
            raise LineInvalid(errors) from exc
        raise FileInvalid([e for e in errors if e["field"] != "credit_code"]) from exc


def ndjson_reader(model: type[RegisterLine]) -> Reader:
    def read(raw: bytes) -> RegisterLine:
        try:
            data = decode_line(raw)
        except LineInvalid as exc:
            raise FileInvalid(exc.errors) from exc
        return _validated(model, data, strings=False)

    return read


@dataclass(frozen=True)
class CsvHeader:
    columns: tuple[str, ...]
    encoding: str


def csv_header(model: type[RegisterLine], raw: bytes, encoding: str) -> CsvHeader:
    """The header line's columns, each a field of the kind; 422 naming the column otherwise."""
    try:
        text = raw.decode(encoding).rstrip("\r")
        columns = tuple(cell.strip() for cell in next(csv.reader([text], strict=True)))
    except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
        raise Unprocessable(f"the CSV header line is unreadable: {exc}", field="header") from exc
    known = model.model_fields
    for column in columns:
        if column not in known:
            raise Unprocessable(
                f"unknown column {column!r}; the columns of {model.kind.value} are "
                + ", ".join(known),
                field=column or "header",
                code=ErrorCode.UNKNOWN_COLUMN,
            )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise Unprocessable(f"column {repeated[0]!r} appears twice", field=repeated[0])
    missing = [name for name, field in known.items() if field.is_required() and name not in columns]
    if missing:
        raise Unprocessable(f"the header lacks the column {missing[0]!r}", field=missing[0])
    return CsvHeader(columns, encoding)


def csv_reader(model: type[RegisterLine], header: CsvHeader) -> Reader:
    def read(raw: bytes) -> RegisterLine:
        try:
            text = raw.decode(header.encoding).rstrip("\r")
            cells = next(csv.reader([text], strict=True))
        except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
            raise FileInvalid([{"field": "line", "message": f"unreadable CSV: {exc}"}]) from exc
        if len(cells) != len(header.columns):
            message = f"{len(cells)} cells, the header has {len(header.columns)} columns"
            raise FileInvalid([{"field": "line", "message": message}])
        # An empty cell is a field not given (an optional one keeps its default).
        data = {
            column: cell.strip()
            for column, cell in zip(header.columns, cells, strict=True)
            if cell.strip()
        }
        return _validated(model, data, strings=True)

    return read


def _entry(line: RegisterLine, line_no: int, credit_code: str) -> dict[str, Any]:
    fields = line.model_dump(mode="json", exclude_none=True) | {"credit_code": credit_code}
    starts_on, ends_on = line.validity()
    return {
        "kind": line.kind.value,
        "line": line_no,
        "entry_key": line.entry_key(credit_code),
        "credit_code": credit_code,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "amount_yuan": line.amount(),
        "level": line.grade(),
        # What tells a changed entry from an unchanged one in the diff.
        "digest": hashlib.blake2b(
            orjson.dumps(fields, option=orjson.OPT_SORT_KEYS), digest_size=16
        ).hexdigest(),
        "fields": fields,
    }


def prepare_entries(read: Reader, batch_no: int, lines: Sequence[NumberedLine]) -> PreparedBatch:
    """Validate a batch's lines into entry rows; raises Unprocessable for a file error."""
    digest = hashlib.sha256(b"\n".join(raw for _n, raw in lines)).hexdigest()
    batch = PreparedBatch(batch_no=batch_no, line_numbers=[n for n, _ in lines], digest=digest)
    refused: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line_no, raw in lines:
        try:
            line = read(raw)
            code = normalize_credit_code(line.credit_code)
        except FileInvalid as exc:
            refused.extend({"line": line_no, **error} for error in exc.errors)
            continue
        except LineInvalid as exc:
            batch.invalid[line_no] = exc.errors
            continue
        except InvalidCreditCode as exc:
            batch.invalid[line_no] = [{"field": "credit_code", "message": str(exc)}]
            continue
        entry = _entry(line, line_no, code)
        key = entry["entry_key"]
        if key in seen:
            batch.invalid[line_no] = [
                {"field": "credit_code", "message": f"duplicate of line {seen[key]}"}
            ]
            continue
        seen[key] = line_no
        batch.rows.append(entry)
        batch.row_lines.append(line_no)
    if refused:
        first = refused[0]
        raise Unprocessable(
            f"line {first['line']}: {first['field']}: {first['message']} — nothing of this "
            "upload is published; the batches before this line's are kept: fix the file and "
            "resend it with the same upload_id",
            field=first["field"],
            code=ErrorCode.INVALID_REGISTER_LINE,
            extra={"errors": refused[:MAX_REPORTED]},
        )
    return batch
