"""The matching service's own Prometheus metrics: rank requests, pairs scored, the model served."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from fastapi import FastAPI
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.schemas.matching import RankResponse

RANK_REQUESTS: Final = Counter(
    "finmatch_matching_rank_requests_total",
    "Firms ranked (POST /internal/rank answers), by scorer: model (a learned model) or prior "
    "(the rule-and-cost prior, at cold start).",
    ["scorer"],
)
PAIRS_EVALUATED: Final = Counter(
    "finmatch_matching_pairs_evaluated_total",
    "Firm × product pairs checked for eligibility.",
)
PAIRS_SCORED: Final = Counter(
    "finmatch_matching_pairs_scored_total",
    "Eligible firm × product pairs scored (approval probability, cost, score).",
)
for _scorer in ("model", "prior"):
    RANK_REQUESTS.labels(_scorer)


def ranked(answer: RankResponse) -> None:
    """Count one answered rank request."""
    RANK_REQUESTS.labels("prior" if answer.is_prior else "model").inc()
    PAIRS_EVALUATED.inc(answer.evaluated)
    PAIRS_SCORED.inc(answer.eligible)


class MatchingCollector(Collector):
    """Reads one matching app's model manager at scrape time."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        manager = getattr(self.app.state, "models", None)
        if manager is None:  # before the lifespan has loaded anything
            return
        scorer = manager.scorer
        info = InfoMetricFamily(
            "finmatch_matching_model",
            "The model this replica serves; is_prior is true while the rule-and-cost prior "
            "ranks (no model promoted yet).",
        )
        is_prior = "true" if scorer.is_prior else "false"
        info.add_metric([], {"version": str(scorer.version), "is_prior": is_prior})
        yield info
        yield GaugeMetricFamily(
            "finmatch_matching_model_error",
            "1 when the last attempt to load or check the champion failed (see /readyz); the "
            "replica keeps serving the model it had.",
            value=0 if manager.last_error is None else 1,
        )
