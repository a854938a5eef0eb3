"""Registry settings (environment variables with the FINMATCH_ prefix)."""

from __future__ import annotations

import math
import os
from functools import lru_cache

from pydantic import Field, FilePath

from shared.settings import DEV_PLACEHOLDER, ServiceSettings
from shared.vocab.categories import ProductCategory

DAY_SECONDS = 86_400
# 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h eight times: the last attempt is about 3.6 days after
# the first (over 3 days even with every jitter at -10 %), 14 attempts in all.
DEFAULT_RETRY_SCHEDULE = (5, 300, 1_800, 7_200, 18_000, *(36_000,) * 8)


CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"


def default_processes(cpu_max: str | None = None) -> int:
    """The CPUs this process may use, when more than one; else 0 (no validation pool). Those
    it may run on (os.sched_getaffinity), fewer under a cgroup v2 CPU quota (a container's CPU
    limit: a pod limited to 1 CPU on a 16-core node gets no pool, not 16 workers)."""
    usable = len(os.sched_getaffinity(0))
    try:
        with open(cpu_max or CGROUP_CPU_MAX) as limits:
            quota, period = limits.read().split()[:2]
        if quota != "max":
            usable = min(usable, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota visible: the affinity alone
    return usable if usable > 1 else 0


class RegistrySettings(ServiceSettings):
    database_url: str = "sqlite:///var/finmatch.db"
    registry_host: str = "127.0.0.1"
    registry_port: int = 8001
    db_pool_size: int = 10
    # While PostgreSQL is unreachable, a request waits at most about this long for a
    # connection before it answers 503 database_unavailable (libpq counts whole seconds, at
    # least 2), and at most db_pool_timeout_seconds for a pooled one when all are in use.
    db_connect_timeout_seconds: int = Field(default=2, ge=2, le=60)
    db_pool_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # The Retry-After of that 503: the registry reconnects by itself on the next request.
    db_retry_after_seconds: int = Field(default=2, ge=1, le=300)
    bulk_batch_size: int = 5_000
    bulk_max_lines: int = 1_000_000
    # Worker processes validating bulk-import batches (firms, past decisions) on every core;
    # 0 validates in the thread pool. Unset: one per usable CPU when there are several
    # (bulk_validate_workers).
    bulk_validate_processes: int | None = Field(default=None, ge=0, le=64)
    page_max: int = 500
    # A register upload left unpublished with nothing sent for this long is abandoned: the
    # sweep (services/registry/registers/sweep.py) deletes its staged rows and expires it.
    register_upload_ttl_hours: float = Field(default=72, gt=0, le=24 * 365)
    # Officials' targets, defaults from the action plan (东金〔2020〕75号).
    target_firms_registered: int = Field(default=5_000, ge=0, description="item 65")
    target_credit_granted_yuan: int = Field(default=10_000_000_000, ge=0, description="item 65")
    target_trade_finance_sme_share: float = Field(default=0.5, ge=0, le=1, description="item 69")
    # Item 74 asks ≥ 60 %; the national rule for government guarantors now asks ≥ 80 %.
    target_guarantee_small_agri_share: float = Field(default=0.6, ge=0, le=1, description="item 74")
    # Which categories count as trade finance (item 69) and as guarantees (item 74).
    trade_finance_categories: tuple[ProductCategory, ...] = (
        ProductCategory.GUANMAOTONG,
        ProductCategory.CREDIT_INSURANCE_GUARANTEE,
    )
    guarantee_categories: tuple[ProductCategory, ...] = (
        ProductCategory.GUARANTEED,
        ProductCategory.CREDIT_INSURANCE_GUARANTEE,
        ProductCategory.INVEST_LOAN_GUARANTEE,
    )
    # League table: applications still unanswered this many working days after submission.
    response_deadline_working_days: int = Field(default=5, ge=1, le=60)
    # Each event is queued once per subscribed endpoint: a principal keeps at most this many.
    webhook_max_endpoints: int = Field(default=20, ge=1, le=1000)
    # Webhook targets must be https and public addresses (shared/ssrf.py), except in
    # development or with this flag (tests, `make run`): then http and private ones too.
    webhook_allow_private: bool = False
    # The webhook dispatcher (python -m services.registry.dispatcher, docs/operations.md).
    # How many deliveries one process sends at a time, and claims per query.
    dispatcher_concurrency: int = Field(default=64, ge=1, le=1_000)
    dispatcher_batch_size: int = Field(default=64, ge=1, le=1_000)
    # How often an idle dispatcher looks for due deliveries.
    dispatcher_poll_seconds: float = Field(default=0.2, gt=0, le=60)
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
    # A PEM file of CA certificates trusted for https receivers besides httpx's default bundle
    # (certifi): a private CA, the tests' own. None: the default bundle only.
    webhook_ca_bundle: FilePath | None = None
    # An endpoint that has failed without a success in between for this long is disabled.
    webhook_disable_after_failing_seconds: float = Field(default=5 * DAY_SECONDS, gt=0)
    # Proactive matching (match.new_product): the dispatcher asks matching which consenting
    # firms a listed or changed product newly qualifies for, this many firms per request.
    matching_url: str = "http://127.0.0.1:8002"
    proactive_page_firms: int = Field(default=1_000, ge=1, le=5_000)
    proactive_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Retention of the outbox: deliveries that ended (delivered, dead, cancelled) this long ago
    # go with their attempts, and events this old that no delivery refers to any more.
    webhook_retention_days: int = Field(default=30, ge=1, le=3_650)
    # How often each dispatcher runs that clean-up, and the most rows one statement deletes.
    dispatcher_cleanup_interval_seconds: float = Field(default=600.0, gt=0, le=86_400)
    dispatcher_cleanup_batch_size: int = Field(default=1_000, ge=1, le=100_000)
    # Where the dispatcher serves its /metrics (port 0: not served).
    dispatcher_metrics_host: str = "127.0.0.1"
    dispatcher_metrics_port: int = Field(default=8003, ge=0, le=65_535)
    # HMAC-SHA256 key of the credit codes in imported decisions (POST /v1/decisions/history):
    # only the keyed hash is stored, so a leaked table cannot be matched against a list of
    # codes. Changing it splits one firm's rows imported before and after into two firms.
    credit_code_hash_key: str = DEV_PLACEHOLDER
    # Each firm's entry in Redis, written after every commit that changes the firm, which the
    # gateway reads instead of asking the registry (shared/firm_entries.py). Unset: no entries
    # (the gateway asks the registry for each uncached match). The prefix must be the
    # gateway's FINMATCH_REDIS_PREFIX: the entries are its keys.
    redis_url: str | None = None
    redis_prefix: str = Field(default="finmatch:", min_length=1, max_length=64)
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=60)
    # How long an entry is kept after its last write (a write-through, or the gateway writing
    # back what it read); memory is about 1.3 KB per firm kept.
    firm_entry_ttl_seconds: float = Field(default=7 * DAY_SECONDS, gt=0, le=365 * DAY_SECONDS)
    # While writes did not reach Redis, how often they are tried again.
    firm_entry_retry_seconds: float = Field(default=1.0, gt=0, le=600)

    def check_secrets(self) -> None:
        """Refuse to start outside development with a placeholder secret."""
        super().check_secrets()
        if self.environment != "development" and self.credit_code_hash_key == DEV_PLACEHOLDER:
            raise RuntimeError(
                "FINMATCH_CREDIT_CODE_HASH_KEY must be set outside development "
                f"(FINMATCH_ENVIRONMENT={self.environment})"
            )

    @property
    def bulk_validate_workers(self) -> int:
        """The validation pool's size (0: no pool), the setting's or the default."""
        if self.bulk_validate_processes is None:
            return default_processes()
        return self.bulk_validate_processes

    @property
    def webhook_private_targets_allowed(self) -> bool:
        return self.environment == "development" or self.webhook_allow_private


@lru_cache
def get_settings() -> RegistrySettings:
    return RegistrySettings()
