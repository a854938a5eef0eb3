"""The registry of problem codes (shared/error_codes.py): every code raised anywhere is in it,
and a code that is not cannot be raised."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.criteria import CRITERION_CODES
from shared.error_codes import PUBLIC_CODES, ErrorCode
from shared.errors import NotFound, ProblemError

ROOT = Path(__file__).resolve().parents[2]
HAN = re.compile(r"[\u4e00-\u9fff]")
# `code` literals in the source that are not problem codes: an explanation's reason, an input
# warning, the eligibility criteria (an unmet criterion's code).
NOT_PROBLEM_CODES = {"cost", "export_exceeds_revenue", "declaration_contradicted"} | set(
    CRITERION_CODES
)
LITERAL = re.compile(r"""\bcode\s*=\s*["']([a-z_]+)["']|["']code["']\s*:\s*["']([a-z_]+)["']""")


def test_every_code_has_statuses_and_a_meaning_in_both_languages() -> None:
    for code in ErrorCode:
        assert code.statuses, code
        assert all(400 <= status <= 599 for status in code.statuses), code
        assert HAN.search(code.zh), code
        assert code.en, code
        assert not HAN.search(code.en), code
    assert len({code.value for code in ErrorCode}) == len(ErrorCode)
    assert ErrorCode.KEY_REVOKED not in PUBLIC_CODES  # answered to the gateway only
    assert ErrorCode.STALE_VERSION in PUBLIC_CODES


def test_an_unregistered_code_cannot_be_raised() -> None:
    with pytest.raises(ValueError, match="not a registered problem code"):
        NotFound("x", code="no_such_code")  # type: ignore[arg-type]
    assert NotFound("x", code=ErrorCode.JOB_NOT_FOUND).to_problem()["code"] == "job_not_found"


def test_an_error_class_with_an_unregistered_code_cannot_be_declared() -> None:
    with pytest.raises(ValueError, match="not a registered problem code"):

        class Teapot(ProblemError):  # pyright: ignore[reportUnusedClass]
            status, code = 418, "teapot"  # type: ignore[assignment]


def test_every_code_literal_in_the_source_is_registered() -> None:
    """A code written as a string (a problem body built by hand, a comparison) is one of ours:
    the type checker covers raises, this covers the strings."""
    found: dict[str, set[str]] = {}
    for folder in ("services", "shared"):
        for path in (ROOT / folder).rglob("*.py"):
            for match in LITERAL.finditer(path.read_text()):
                literal = match.group(1) or match.group(2)
                found.setdefault(literal, set()).add(str(path.relative_to(ROOT)))
    registered = {code.value for code in ErrorCode}
    unknown = {k: v for k, v in found.items() if k not in registered | NOT_PROBLEM_CODES}
    assert not unknown, unknown
    assert "training_in_progress" in found  # the scan sees the hand-written problem examples
