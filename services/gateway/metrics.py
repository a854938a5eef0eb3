"""The gateway's own Prometheus metrics: matches served, rate-limit refusals, and what its
state says at scrape time (the model version it knows, each downstream's circuit breaker)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Literal, get_args

from fastapi import FastAPI
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from services.gateway.clients import BreakerState
from shared.enums import PrincipalRole

MatchOutcome = Literal["fresh", "cached", "stale", "unavailable"]

MATCHES_SERVED: Final = Counter(
    "finmatch_gateway_matches_served_total",
    "Match lists answered by GET /v1/firms/{firm_id}/matches, by outcome: fresh (ranked by the "
    "matching service), cached (the same answer from the cache), stale (the matching service "
    "could not answer: the last answer for that firm and query), unavailable (it could not "
    "answer and none was held: 503).",
    ["outcome"],
)
RATE_LIMIT_REJECTIONS: Final = Counter(
    "finmatch_gateway_rate_limit_rejections_total",
    "Requests refused with 429 because the API key's rate limit was reached, by principal role.",
    ["role"],
)
AUTH_FAILURES: Final = Counter(
    "finmatch_gateway_auth_failures_total",
    "Failed API key authentications, by reason: unknown_key, revoked_key, expired_key, "
    "malformed_key (too long, not ASCII), throttled (refused with 429 after too many failures "
    "from the client address or on the key prefix). Each is also logged as a security event.",
    ["reason"],
)
ELIGIBILITY_CHECKS: Final = Counter(
    "finmatch_gateway_application_eligibility_total",
    "Applications checked against matching's eligibility rules at submission, by result: "
    "eligible, ineligible, unknown (matching could not be asked; the application went ahead).",
    ["result"],
)
EligibilityResult = Literal["eligible", "ineligible", "unknown"]
AuthFailure = Literal["unknown_key", "revoked_key", "expired_key", "malformed_key", "throttled"]
# Every series exists from the start, so rate() and alerts see a 0 rather than nothing.
for _outcome in ("fresh", "cached", "stale", "unavailable"):
    MATCHES_SERVED.labels(_outcome)
for _role in PrincipalRole:
    RATE_LIMIT_REJECTIONS.labels(_role.value)
for _reason in get_args(AuthFailure):
    AUTH_FAILURES.labels(_reason)
for _result in get_args(EligibilityResult):
    ELIGIBILITY_CHECKS.labels(_result)

BREAKER_STATE_VALUES: Final[dict[BreakerState, int]] = {"closed": 0, "half_open": 1, "open": 2}


def match_served(outcome: MatchOutcome) -> None:
    MATCHES_SERVED.labels(outcome).inc()


def eligibility_checked(result: EligibilityResult) -> None:
    ELIGIBILITY_CHECKS.labels(result).inc()


class GatewayCollector(Collector):
    """Reads one gateway app's state at scrape time (nothing before its lifespan has run)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        state = self.app.state
        breakers = GaugeMetricFamily(
            "finmatch_circuit_breaker_state",
            "Circuit breaker per downstream service: 0 closed, 1 half-open (the next call is "
            "a trial), 2 open (calls fail fast).",
            labels=["downstream"],
        )
        for attribute in ("registry", "matching"):
            client = getattr(state, attribute, None)
            if client is not None:
                value = BREAKER_STATE_VALUES[client.breaker_state]
                breakers.add_metric([client.name], value)
        yield breakers
        version = getattr(state, "model_version", None)
        if version is not None:
            info = InfoMetricFamily(
                "finmatch_gateway_model",
                "The matching model version the gateway knows is served (part of its match "
                "cache keys); 'unknown' until the matching service has said.",
            )
            info.add_metric([], {"version": str(version)})
            yield info
