"""NDJSON imports (firms in bulk, past decisions): one result per line, then a summary."""

from __future__ import annotations

from finmatch_client.models._base import Answer
from finmatch_client.models.firms import InputWarning
from finmatch_client.models.problems import FieldError


class ImportLineResult(Answer):
    """``status``: created, updated or imported (written); duplicate (a past decision the
    institution already holds, from any import: not written again, ``id`` is the row that
    holds it); invalid (``errors`` name the fields); not_written (another line of its batch
    was invalid); already_committed (the batch was written by an earlier request with this
    import_id); conflict."""

    line: int
    status: str
    id: int | None = None
    credit_code: str | None = None
    source: str | None = None
    reason: str | None = None
    errors: list[FieldError] | None = None
    warnings: list[InputWarning] | None = None


class ImportResult(Answer):
    """The whole answer: each line's result, the counts, and the batches' fate. Resend the
    same lines with the same ``import_id`` to resume: committed batches are skipped."""

    lines: list[ImportLineResult]
    summary: dict[str, int]
    batches: dict[str, int]
    import_id: str
    batch_size: int

    @property
    def ok(self) -> bool:
        """Every line written, now or by an earlier request (a duplicate is held already)."""
        return all(line.status not in {"invalid", "not_written", "conflict"} for line in self.lines)
