"""Dispatcher settings (environment variables with the FINMATCH_ prefix)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from shared.settings import ServiceSettings

DAY_SECONDS = 86_400.0
# 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h eight times: the last attempt is about 3.6 days after
# the first (over 3 days even with every jitter at -10 %), 14 attempts in all.
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1_800.0, 7_200.0, 18_000.0, *(36_000.0,) * 8)


class DispatcherSettings(ServiceSettings):
    database_url: str = "sqlite:///var/finmatch.db"
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_connect_timeout_seconds: int = Field(default=2, ge=2, le=60)
    # Send to private, loopback and link-local addresses and over plain http (tests, make run).
    # FINMATCH_ENVIRONMENT=development allows the same.
    webhook_allow_private: bool = False
    # How many deliveries one process sends at a time, and claims per query.
    dispatcher_concurrency: int = Field(default=64, ge=1, le=1_000)
    dispatcher_batch_size: int = Field(default=64, ge=1, le=1_000)
    # How often an idle dispatcher looks for due deliveries.
    dispatcher_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    # A claimed delivery is this process's until then; after a crash another dispatcher takes it
    # over once it expires. Longer than a send (webhook_timeout_seconds) plus its recording.
    dispatcher_lease_seconds: float = Field(default=60.0, gt=0, le=3_600)
    # Seconds to wait after the 1st, 2nd, … failed attempt; after the last, the delivery is dead.
    webhook_retry_schedule_seconds: tuple[float, ...] = Field(
        default=DEFAULT_RETRY_SCHEDULE, min_length=1
    )
    # Each wait is stretched or shrunk by up to this fraction, so that failed deliveries spread.
    webhook_retry_jitter: float = Field(default=0.1, ge=0, lt=1)
    # A 429's or 503's Retry-After is honoured when longer than the schedule, up to this.
    webhook_retry_after_max_seconds: float = Field(default=DAY_SECONDS, gt=0)
    webhook_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_response_max_bytes: int = Field(default=4_096, ge=0, le=1_048_576)
    # An endpoint that has failed without a success in between for this long is disabled.
    webhook_disable_after_failing_seconds: float = Field(default=5 * DAY_SECONDS, gt=0)
    # /metrics of this process (0: not served).
    dispatcher_metrics_host: str = "127.0.0.1"
    dispatcher_metrics_port: int = Field(default=8003, ge=0, le=65_535)

    @property
    def allow_private_targets(self) -> bool:
        return self.webhook_allow_private or self.environment == "development"


@lru_cache
def get_settings() -> DispatcherSettings:
    return DispatcherSettings()
