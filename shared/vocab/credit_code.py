"""统一社会信用代码 (GB 32100-2015): normalisation, validation and synthetic Dongguan codes."""

# Sources (see /work/shared/reference/domain_facts.md §4): the structure, the 31-character set
# (digits and letters without I, O, S, V, Z) and the mod-31 check character are those of
# python-stdnum's stdnum/cn/uscc.py, which we call rather than re-implement.
# Limits inherited from stdnum.cn.uscc.validate: it requires the first 8 characters to be digits
# (so a registration authority of "Y" or "A" is rejected), and it checks neither the GB 11714
# check character at position 17 nor the region code against GB/T 2260.

from __future__ import annotations

import re
import unicodedata

from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength, ValidationError

from shared.vocab.towns import DONGGUAN_REGION_CODE

CREDIT_CODE_LENGTH = 18
CODE_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# The canonical form stdnum.cn.uscc.validate accepts, before its check character is checked.
_CANONICAL = re.compile(r"[0-9]{8}[0-9A-HJ-NPQRTUWXY]{10}")

_ORG_CODE_LENGTH = 9
_ORG_CODE_SPACE = len(CODE_CHARACTERS) ** _ORG_CODE_LENGTH
# Any multiplier coprime to 31 makes seq -> organisation code a bijection on the code space.
# Scattering consecutive seqs keeps a synthetic population from all sharing a "00000…"
# organisation code, which would look nothing like real registrations.
_ORG_CODE_MULTIPLIER = 7_368_787_397
_ORG_CODE_OFFSET = 1_234_567_890_123


class InvalidCreditCode(ValueError):
    """The text is not a valid unified social credit code; the message says why."""


def _compact(raw: str) -> str:
    # NFKC first: Chinese forms often carry full-width digits, letters and hyphens (９１４４…).
    text = unicodedata.normalize("NFKC", raw)
    return "".join(ch for ch in text if not ch.isspace() and ch != "-").upper()


def normalize_credit_code(raw: str) -> str:
    """Return the canonical 18-character form of ``raw`` or raise InvalidCreditCode.

    Whitespace and '-' separators are dropped (after folding full-width characters) and letters
    are upper-cased before validation.
    """
    if _CANONICAL.fullmatch(raw) and uscc.calc_check_digit(raw[:-1]) == raw[-1]:
        # Already compact and valid, as nearly every line of a 100,000-line upload is: the
        # check character alone (stdnum's), without three passes of clean-up around it.
        return raw
    code = _compact(raw)
    try:
        return str(uscc.validate(code))
    except InvalidLength:
        raise InvalidCreditCode(
            f"credit code must be {CREDIT_CODE_LENGTH} characters, got {len(code)}"
        ) from None
    except InvalidFormat:
        raise InvalidCreditCode(_format_problem(code)) from None
    except InvalidChecksum:
        raise InvalidCreditCode(
            f"credit code check character is wrong: {code[-1]!r}, expected "
            f"{uscc.calc_check_digit(code[:-1])!r}"
        ) from None
    except ValidationError as exc:  # future stdnum checks we do not know by name yet
        raise InvalidCreditCode(f"credit code is invalid: {exc}") from None


def _format_problem(code: str) -> str:
    if not code[:8].isascii() or not code[:8].isdigit():
        return (
            "credit code characters 1-8 (registration authority, entity type and region code) "
            f"must be digits, got {code[:8]!r}"
        )
    bad = sorted({ch for ch in code[8:] if ch not in CODE_CHARACTERS})
    return (
        f"credit code contains characters outside the GB 32100 set: {''.join(bad)!r} "
        "(allowed: digits and capital letters except I, O, S, V, Z)"
    )


def make_credit_code(body: str) -> str:
    """Complete the first 17 characters of ``body`` with their check character.

    ``body`` is compacted like user input; a valid code with a wrong or missing 18th character
    comes back corrected. Raises InvalidCreditCode if the result cannot be a valid code.
    """
    head = _compact(body)[: CREDIT_CODE_LENGTH - 1]
    if len(head) != CREDIT_CODE_LENGTH - 1:
        raise InvalidCreditCode(
            f"credit code body must have at least {CREDIT_CODE_LENGTH - 1} characters, "
            f"got {len(head)}"
        )
    bad = sorted({ch for ch in head if ch not in CODE_CHARACTERS})
    if bad:
        raise InvalidCreditCode(
            f"credit code body contains characters outside the GB 32100 set: {''.join(bad)!r}"
        )
    return normalize_credit_code(head + uscc.calc_check_digit(head))


def make_dongguan_credit_code(seq: int, kind: str = "91") -> str:
    """A valid synthetic code registered in Dongguan (441900), distinct for each ``seq``.

    ``kind`` is the registration authority and entity type: "91" an enterprise, "92" an
    individual business (个体工商户), "93" a farmers' cooperative. The 9-character organisation
    code is a fixed bijection of ``seq`` over the 31-character set, so it is deterministic and
    unique for 0 ≤ seq < 31**9. Its last character is not a GB 11714 check character, since that
    rule is UNCONFIRMED in our sources.
    """
    if len(kind) != 2 or not kind.isascii() or not kind.isdigit():
        raise ValueError(f"kind must be two digits such as '91', got {kind!r}")
    if not 0 <= seq < _ORG_CODE_SPACE:
        raise ValueError(f"seq must be in 0..{_ORG_CODE_SPACE - 1}, got {seq}")
    value = (seq * _ORG_CODE_MULTIPLIER + _ORG_CODE_OFFSET) % _ORG_CODE_SPACE
    base = len(CODE_CHARACTERS)
    digits: list[str] = []
    for _ in range(_ORG_CODE_LENGTH):
        value, remainder = divmod(value, base)
        digits.append(CODE_CHARACTERS[remainder])
    org_code = "".join(reversed(digits))
    return make_credit_code(kind + DONGGUAN_REGION_CODE + org_code)
