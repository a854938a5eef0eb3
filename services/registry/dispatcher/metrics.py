"""The dispatcher's Prometheus metrics, served by a small HTTP server of its own (/metrics)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Final

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from services.registry.dispatcher import store

logger = logging.getLogger("finmatch.dispatcher")

ATTEMPTS: Final = Counter(
    "finmatch_webhook_attempts_total",
    "Webhook attempts by outcome: success (2xx), retry (a network error, 5xx or 429 with "
    "attempts left), failed (the last attempt, or a 3xx/4xx answer), refused (the target "
    "address is not allowed; never sent).",
    ["outcome"],
)
DELIVERIES: Final = Counter(
    "finmatch_webhook_deliveries_total",
    "Webhook deliveries that ended, by outcome: delivered or dead.",
    ["outcome"],
)
DISABLED: Final = Counter(
    "finmatch_webhook_endpoints_disabled_total",
    "Endpoints the dispatcher disabled, by reason (gone_410, failing_5_days).",
    ["reason"],
)
RETENTION_REMOVED: Final = Counter(
    "finmatch_webhook_retention_removed_total",
    "Rows the outbox's retention clean-up deleted, by table (webhook_attempt, "
    "webhook_delivery, outbox_event, match_scan).",
    ["table"],
)
ATTEMPT_DURATION: Final = Histogram(
    "finmatch_webhook_attempt_duration_seconds",
    "Time of one attempt, from resolving the host to the end of reading the answer.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RECORD_BATCH: Final = Histogram(
    "finmatch_webhook_record_batch_size",
    "Attempts recorded together in one transaction (those that finished while the previous "
    "one was being written).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


class OutboxCollector(Collector):
    """Outbox depth (pending deliveries) and the age of the oldest, read at scrape time."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))

    def collect(self) -> Iterator[Metric]:
        try:
            depth, oldest = store.pending_depth(self.engine)
        except Exception:  # a scrape while the database is away shows no outbox, not an error
            logger.warning("outbox depth unavailable", exc_info=True)
            return
        yield GaugeMetricFamily(
            "finmatch_webhook_outbox_pending",
            "Webhook deliveries not yet delivered, dead or cancelled.",
            value=depth,
        )
        age = 0.0 if oldest is None else max(0.0, (self.clock() - oldest).total_seconds())
        yield GaugeMetricFamily(
            "finmatch_webhook_oldest_pending_age_seconds",
            "Age of the oldest pending webhook delivery (0 when none is pending).",
            value=age,
        )


SCANS: Final = Counter(
    "finmatch_match_scans_total",
    "Proactive-matching scans that ended, by outcome: done, or superseded (the product was "
    "changed again or unlisted first).",
    ["outcome"],
)
SCAN_PAGES: Final = Counter(
    "finmatch_match_scan_pages_total",
    "Pages of firms sent to matching by proactive matching, by outcome: ok, or error (matching "
    "unavailable or refused; the page is tried again after a backoff).",
    ["outcome"],
)
NEW_PRODUCT_EVENTS: Final = Counter(
    "finmatch_match_new_product_events_total",
    "match.new_product events written (one per firm a product newly qualifies for).",
)
