"""Log lines that name the service and the request they belong to."""

from __future__ import annotations

import logging

from shared.request_context import current_request_id


class _RequestIdFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = current_request_id() or "-"
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """One stream handler on the root logger; every line carries service and request id."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter(service))
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s service=%(service)s request_id=%(request_id)s "
            "%(name)s: %(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
