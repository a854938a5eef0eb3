"""Matching-service settings (environment variables with the FINMATCH_ prefix)."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import DEV_PLACEHOLDER, ServiceSettings


class MatchingSettings(ServiceSettings):
    matching_host: str = "127.0.0.1"
    matching_port: int = 8002
    registry_url: str = "http://127.0.0.1:8001"
    registry_timeout_seconds: float = 30.0
    redis_url: str | None = None
    # Key of the HMAC that signs model artifacts: a replica loads only what we signed.
    model_signing_key: str = DEV_PLACEHOLDER
    model_poll_seconds: float = 30.0
    retrain_after_decisions: int = 500
    retrain_check_seconds: float = 300.0
    auto_retrain: bool = True
    min_training_rows: int = 200
    # A training job's runner reports at least every third of this; a job silent for longer
    # is failed as "runner lost" (its replica died) and no longer blocks the next one.
    training_lease_seconds: float = 60.0
    # Coverage, what-if and reach keep every registered firm and, before each answer, read the
    # firms written since the last read, from this long before it: the longest a firm write
    # transaction (plus clock skew between registry replicas) may take and still be seen.
    firm_feed_overlap_seconds: float = 120.0
    # Read every firm at start, so the first question does not wait for it.
    firm_feed_warm: bool = True

    def check_secrets(self) -> None:
        super().check_secrets()
        if self.environment != "development" and self.model_signing_key == DEV_PLACEHOLDER:
            raise RuntimeError("FINMATCH_MODEL_SIGNING_KEY must be set outside development")

    @property
    def signing_key(self) -> bytes:
        return self.model_signing_key.encode()


@lru_cache
def get_settings() -> MatchingSettings:
    return MatchingSettings()
