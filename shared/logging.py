"""Log lines that name the service and the request they belong to, with personal data masked.

Two formats (``FINMATCH_LOG_FORMAT``): ``json``, one JSON object per line for the log pipeline,
and ``text``, for a developer's terminal (``make run``). Every line carries timestamp, level,
service, logger, message and request_id; access lines add route, method, status, latency_ms
and principal_id as fields.

Both formats mask, in the message, in any extra field and in tracebacks: mainland mobile and
landline numbers (``138****5678``, ``0769-****3456``), 18-character unified social credit
codes (which also covers 18-character resident ID numbers: ``9144**********123X``), and the
values of fields named like a contact or a name (``contact_name``, ``联系人``: ``张*``). A log
call that must show a full credit code says so with ``extra=REVEAL_CREDIT_CODES``.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from shared.request_context import current_request_id
from shared.vocab.credit_code import CODE_CHARACTERS

LogFormat = Literal["json", "text"]

# extra=REVEAL_CREDIT_CODES on a log call leaves its credit codes whole (phones and names are
# still masked); the flag itself never reaches the output.
REVEAL_FLAG: Final = "finmatch_reveal_credit_codes"
REVEAL_CREDIT_CODES: Final = {REVEAL_FLAG: True}

TEXT_FORMAT: Final = (
    "%(asctime)s %(levelname)s service=%(service)s request_id=%(request_id)s %(name)s: %(message)s"
)
# Fields whose values we write ourselves and never hold personal data: not scanned.
_OWN_FIELDS: Final = frozenset(
    {"timestamp", "level", "service", "logger", "request_id", "route", "method", "status"}
    | {"latency_ms", "principal_id"}
)
# Not ours to print: uvicorn's ANSI-coloured copy of its message, our opt-in flag.
_DROPPED_FIELDS: Final = ("color_message", REVEAL_FLAG)

# --- masking --------------------------------------------------------------------------------

_CODE_CHAR = "[" + re.escape(CODE_CHARACTERS) + "]"
_EDGE_BEFORE = r"(?<![0-9A-Za-z.])"
_EDGE_AFTER = r"(?![0-9A-Za-z])"
# One pass over the text; at each position the alternatives are tried in this order.
_SENSITIVE = re.compile(
    _EDGE_BEFORE
    + "(?:"
    # 统一社会信用代码: 2 code characters, a 6-digit region, 10 code characters.
    + rf"(?P<code>{_CODE_CHAR}{{2}}[0-9]{{6}}{_CODE_CHAR}{{10}})"
    # Mainland mobile, optionally +86 and spaced or hyphenated as 3-4-4.
    + r"|(?P<mobile>(?:\+?86[-\s]?)?1[3-9][0-9](?:[-\s]?[0-9]{4}){2})"
    # Landline with its area code (010, 02x, 0xxx), optionally in brackets or hyphenated.
    + r"|(?P<landline>\(?0(?:10|2[0-9]|[3-9][0-9]{2})\)?[-\s]?[2-8][0-9]{6,7})"
    + ")"
    + _EDGE_AFTER,
    re.IGNORECASE,
)
# "contact=张三", "联系人：张三", "'contact_name': 'Li Lei'", "name=..." in free text.
_NAMED_VALUE = re.compile(
    r"(?P<key>\b[A-Za-z_]*(?:contact|name)[A-Za-z_]*|联系人|姓名)"
    r"(?P<sep>['\"]?\s*[=:：]\s*)"
    r"(?:(?P<quote>['\"])(?P<quoted>[^'\"]*)(?P=quote)|(?P<bare>[^\s,;'\"}\])&]+))",
    re.IGNORECASE,
)
# Every pattern above needs four digits in a row; most lines have none and are not scanned.
_DIGIT_RUN = re.compile(r"[0-9]{4}")
_NAME_WORDS: Final = ("contact", "name", "联系人", "姓名")
_NAME_TOKEN = re.compile(r"[_\-.\s]+")
_PHONE_WORDS: Final = ("phone", "mobile", "tel", "telephone", "fax")
_CHINESE_NAME_KEYS: Final = ("联系人", "姓名", "名字")
_CHINESE_PHONE_KEYS: Final = ("电话", "手机", "联系方式")


def _mask_code(code: str) -> str:
    return f"{code[:4]}{'*' * 10}{code[-4:]}"


def _mask_phone(number: str) -> str:
    """The first three digits of a mobile (or the area code) and the last four stay."""
    digits = re.sub(r"[^0-9]", "", number)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if digits.startswith("1"):
        return f"{digits[:3]}****{digits[-4:]}"
    area = 3 if digits[1] in "12" else 4
    return f"{digits[:area]}-{'*' * (len(digits) - area - 4)}{digits[-4:]}"


def mask_name(name: str) -> str:
    """``张三`` → ``张*``: the first character stays, so a reader can still tell two apart."""
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1) if name else name


def _mask_digits(value: str) -> str:
    """A value known to be a phone number, whatever its shape: all but the last four digits."""
    digits = sum(ch.isdigit() for ch in value)
    seen = 0
    out = []
    for ch in value:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 4 else "*")
        else:
            out.append(ch)
    return "".join(out)


def mask_text(text: str, *, reveal_credit_codes: bool = False) -> str:
    """``text`` with phone numbers, credit codes and named contacts masked."""

    def sensitive(match: re.Match[str]) -> str:
        code = match.group("code")
        if code is not None:
            return code if reveal_credit_codes else _mask_code(code)
        return _mask_phone(match.group(0))

    def named(match: re.Match[str]) -> str:
        value = match.group("quoted") if match.group("quote") else match.group("bare")
        masked = mask_name(value)
        if match.group("quote"):
            masked = match.group("quote") + masked + match.group("quote")
        return match.group("key") + match.group("sep") + masked

    if _DIGIT_RUN.search(text):
        text = _SENSITIVE.sub(sensitive, text)
    lowered = text.lower()
    if any(word in lowered for word in _NAME_WORDS):
        text = _NAMED_VALUE.sub(named, text)
    return text


@lru_cache(maxsize=1024)
def _field_kind(key: str) -> Literal["name", "phone", None]:
    """What a field's name says it holds; a phone first (``contact_phone`` is a number)."""
    lowered = key.lower()
    tokens = _NAME_TOKEN.split(lowered)
    if any(t in _PHONE_WORDS for t in tokens) or any(w in lowered for w in _CHINESE_PHONE_KEYS):
        return "phone"
    if any(w in lowered for w in _CHINESE_NAME_KEYS):
        return "name"
    if any(t.startswith("contact") or t.endswith("name") for t in tokens):
        return "name"
    return None


def mask_value(key: str, value: Any, *, reveal_credit_codes: bool = False) -> Any:
    """A field's value, masked by what its name says it holds and by what it contains."""
    kind = _field_kind(key)
    if isinstance(value, str):
        if kind == "name":
            return mask_name(value)
        masked = mask_text(value, reveal_credit_codes=reveal_credit_codes)
        if kind == "phone" and masked == value:  # not a mainland number: hide all digits but 4
            return _mask_digits(value)
        return masked
    if isinstance(value, int) and not isinstance(value, bool):
        if kind == "phone" or (kind is None and value >= 10**9):
            masked = mask_value(key, str(value), reveal_credit_codes=reveal_credit_codes)
            return masked if masked != str(value) else value
        return value
    if isinstance(value, dict):
        return {
            k: mask_value(str(k), v, reveal_credit_codes=reveal_credit_codes)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_value(key, v, reveal_credit_codes=reveal_credit_codes) for v in value]
    return value


# --- formatting -----------------------------------------------------------------------------


class _ContextFilter(logging.Filter):
    """Adds the service and the current request's id to every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = current_request_id() or "-"
        return True


class JsonLogFormatter(OrjsonFormatter):
    """One JSON object per line: our fields first, then the call's extra fields, all masked."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "service", "name", "message", "request_id"],
            rename_fields={"levelname": "level", "name": "logger"},
            reserved_attrs=[*RESERVED_ATTRS, *_DROPPED_FIELDS],
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["timestamp"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        super().add_fields(log_data, record, message_dict)
        reveal = bool(getattr(record, REVEAL_FLAG, False))
        for key, value in log_data.items():
            if key not in _OWN_FIELDS:
                log_data[key] = mask_value(key, value, reveal_credit_codes=reveal)


class TextLogFormatter(logging.Formatter):
    """The human format (development); the whole line, traceback included, is masked."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        reveal = bool(getattr(record, REVEAL_FLAG, False))
        return mask_text(super().format(record), reveal_credit_codes=reveal)


def configure_logging(service: str, level: str = "INFO", log_format: LogFormat = "json") -> None:
    """One stream handler on the root logger; every line carries service and request id."""
    handler = logging.StreamHandler()
    handler.addFilter(_ContextFilter(service))
    handler.setFormatter(JsonLogFormatter() if log_format == "json" else TextLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request it sends at INFO ("HTTP Request: GET …"): one line per internal
    # call, which the callee's access line and the gateway's client warnings already cover.
    # Those lines show at DEBUG only.
    logging.getLogger("httpx").setLevel(
        logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    )
