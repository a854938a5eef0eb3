"""Log lines as configure_logging writes them: JSON fields, access lines, masked personal data."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from shared.logging import REVEAL_CREDIT_CODES, configure_logging, mask_text
from shared.request_context import request_id_var
from shared.vocab.credit_code import make_dongguan_credit_code
from tests.gateway.conftest import running_stack
from tests.observability.data import seed

CODE = make_dongguan_credit_code(7)  # a valid 18-character unified social credit code
log = logging.getLogger("finmatch.test")


@contextmanager
def captured(log_format: str) -> Iterator[Callable[[], list[str]]]:
    """The handler configure_logging installs, writing to a buffer, on the "finmatch" loggers.

    The root logger is given back at once: pytest keeps its own handlers there.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("observed", "INFO", log_format)  # type: ignore[arg-type]
    installed = root.handlers[:]
    configured_level = root.level
    root.handlers[:] = handlers
    root.setLevel(level)
    assert len(installed) == 1
    assert configured_level == logging.INFO
    handler = installed[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    ours = logging.getLogger("finmatch")
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    try:
        yield lambda: buffer.getvalue().splitlines()
    finally:
        ours.removeHandler(handler)
        ours.setLevel(logging.NOTSET)


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    with captured("json") as lines:
        yield lambda: [json.loads(line) for line in lines()]


def test_every_json_line_has_the_fields(json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    token = request_id_var.set("req-123")
    try:
        log.warning("catalogue %s refreshed", "v7")
    finally:
        request_id_var.reset(token)
    log.info("outside any request")
    inside, outside = json_lines()
    assert list(inside)[:6] == ["timestamp", "level", "service", "logger", "message", "request_id"]
    assert inside["level"] == "WARNING"
    assert inside["service"] == "observed"
    assert inside["logger"] == "finmatch.test"
    assert inside["message"] == "catalogue v7 refreshed"
    assert inside["request_id"] == "req-123"
    assert inside["timestamp"].endswith("+00:00")
    assert outside["request_id"] == "-"


def test_access_lines_of_the_gateway_and_an_internal_service(
    engine: Engine, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    with running_stack(engine) as stack:
        portal, firm_id = seed(stack)
        answer = portal.get(f"/v1/firms/{firm_id}/matches", headers={"X-Request-ID": "trace-me"})
        assert answer.status_code == 200, answer.text
    access = [
        line
        for line in json_lines()
        if line["logger"] == "finmatch.access" and line["request_id"] == "trace-me"
    ]
    by_route = {line["route"]: line for line in access}
    gateway = by_route["/v1/firms/{firm_id}/matches"]
    assert gateway["method"] == "GET"
    assert gateway["status"] == 200
    assert gateway["principal_id"] == portal.principal_id  # type: ignore[attr-defined]
    assert gateway["path"] == f"/v1/firms/{firm_id}/matches"
    assert isinstance(gateway["latency_ms"], float)
    assert gateway["latency_ms"] > 0
    assert gateway["message"].startswith("GET /v1/firms/{firm_id}/matches 200 ")
    # The registry was called on the same request, for the same principal (X-Principal-Id).
    registry = by_route["/v1/firms/{firm_id}"]
    assert registry["principal_id"] == portal.principal_id  # type: ignore[attr-defined]
    assert registry["status"] == 200
    assert "/internal/rank" in by_route  # the matching service's line, same request id


def test_personal_data_is_masked_in_message_and_fields(
    json_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    log.info(
        "firm %s: call 联系人：张三 at 13812345678 or 0769-22123456, contact=李四",
        CODE,
        extra={
            "contact_name": "王小明",
            "联系人": "赵六",
            "contact_phone": "+86 139 1234 5678",
            "firm": {"credit_code": CODE, "contact": "孙七", "mobile": 13712345678},
            "firm_id": 12,
        },
    )
    (line,) = json_lines()
    text = json.dumps(line, ensure_ascii=False)
    for secret in ("张三", "李四", "王小明", "赵六", "孙七", "13812345678", "22123456", CODE):
        assert secret not in text
    assert "1234 5678" not in text
    assert "13712345678" not in text
    masked_code = f"{CODE[:4]}**********{CODE[-4:]}"
    assert line["message"] == (
        f"firm {masked_code}: call 联系人：张* at 138****5678 or 0769-****3456, contact=李*"
    )
    assert line["contact_name"] == "王**"
    assert line["联系人"] == "赵*"
    assert line["contact_phone"] == "139****5678"
    assert line["firm"] == {"credit_code": masked_code, "contact": "孙*", "mobile": "137****5678"}
    assert line["firm_id"] == 12


def test_a_call_may_show_credit_codes_but_never_phones(
    json_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    log.warning("duplicate credit code %s (owner 13812345678)", CODE, extra=REVEAL_CREDIT_CODES)
    (line,) = json_lines()
    assert line["message"] == f"duplicate credit code {CODE} (owner 138****5678)"
    assert "finmatch_reveal_credit_codes" not in line


def test_tracebacks_are_masked(json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    try:
        raise ValueError(f"row rejected: {CODE}, phone 15012345678")
    except ValueError:
        log.exception("import failed")
    (line,) = json_lines()
    assert "ValueError: row rejected" in line["exc_info"]
    assert CODE not in line["exc_info"]
    assert "15012345678" not in line["exc_info"]
    assert "150****5678" in line["exc_info"]


def test_the_text_format_is_masked_too() -> None:
    with captured("text") as lines:
        token = request_id_var.set("req-9")
        try:
            log.info("contact_name=%s phone=%s code=%s", "张三", "13812345678", CODE)
        finally:
            request_id_var.reset(token)
    (line,) = lines()
    assert " INFO service=observed request_id=req-9 finmatch.test: " in line
    assert line.endswith(f"contact_name=张* phone=138****5678 code={CODE[:4]}**********{CODE[-4:]}")


@pytest.mark.parametrize(
    "text",
    [
        "GET /v1/firms/{firm_id}/matches 200 12.3ms principal=4821",
        "request 3f2a9c0e8d7b4a1f9e6c5b4a3f2e1d0c",
        "firm 123456789 ranked 500 products in 0.013812345678 s",
        "catalogue version 20261101-0420, model m-20261101T042000Z",
        "amount 13812345678901 yuan",
    ],
)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("tel 13812345678.", "tel 138****5678."),
        ("+8613812345678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("(020)87654321", "020-****4321"),
        ("010-12345678", "010-12345678"),  # no landline starts with 1: left alone
        ("010-62345678", "010-****5678"),
        ("电话0769 22123456", "电话0769-****3456"),
        ("'contact': 'Li Lei'", "'contact': 'L*****'"),
        ("name=Acme", "name=A***"),
    ],
)
def test_phone_and_name_shapes(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_uvicorns_coloured_copy_is_dropped(json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    log.info("Started server process [%d]", 42, extra={"color_message": "\x1b[36m42\x1b[0m"})
    (line,) = json_lines()
    assert line["message"] == "Started server process [42]"
    assert "color_message" not in line


@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("WARNING", False), ("DEBUG", True)])
def test_httpx_request_lines_show_at_debug_only(level: str, shown: bool) -> None:
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    try:
        configure_logging("observed", level)
        assert logging.getLogger("httpx").isEnabledFor(logging.INFO) is shown
        assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        logging.getLogger("httpx").setLevel(logging.NOTSET)
