"""Gateway settings (environment variables with the FINMATCH_ prefix)."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network

from pydantic import Field, IPvAnyNetwork

from shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    registry_url: str = "http://127.0.0.1:8001"
    matching_url: str = "http://127.0.0.1:8002"
    # Peers whose X-Forwarded-Proto and X-Forwarded-For are believed (addresses or networks):
    # the TLS-terminating proxy in front. Behind it, https makes the session cookie Secure and
    # the client's own address counts for sign-in throttling. Loopback only by default.
    trusted_proxies: tuple[IPvAnyNetwork, ...] = (
        IPv4Network("127.0.0.1/32"),
        IPv6Network("::1/128"),
    )
    redis_url: str | None = None
    # How long the cache and the rate limiter wait for Redis (to connect, and per command)
    # before they use their in-process fallback: short, so an outage costs a request little.
    # The idempotency store waits at least 2 s (a spurious fallback there lets a duplicate in).
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=60)
    # Every key this gateway writes to Redis starts with this, so deployments (or test runs)
    # sharing one Redis never read each other's caches, counters or idempotency keys.
    redis_prefix: str = Field(default="finmatch:", min_length=1, max_length=64)
    # How long the gateway keeps a firm's entry it wrote back after reading the firm from the
    # registry (shared/firm_entries.py; the registry writes them on every firm write).
    firm_entry_ttl_seconds: float = Field(default=7 * 86_400, gt=0, le=365 * 86_400)
    bootstrap_admin_key: str | None = Field(
        default=None, description="accepted as an admin key from the first start"
    )
    # Requests per minute and key, by role.
    rate_limit_portal: int = 600
    rate_limit_institution: int = 600
    rate_limit_official: int = 300
    rate_limit_admin: int = 1200
    rate_limit_window_seconds: int = 60
    # Failed authentications (unknown, revoked or expired keys) allowed per window before
    # further attempts get 429: per client address (unknown keys only: revoked and expired
    # ones are real keys, whose failures lock only their own prefix) and per key prefix.
    auth_failures_per_address: int = Field(default=20, ge=1)
    auth_failures_per_key_prefix: int = Field(default=20, ge=1)
    auth_failure_window_seconds: int = Field(default=60, ge=1)
    # A revocation through this gateway takes effect at once wherever the cache is shared
    # (Redis); other replicas without a shared cache stop accepting the key within this time:
    # no replica holds a key's resolution longer than this after the registry gave it.
    key_cache_seconds: float = 30.0
    catalogue_cache_seconds: float = 60.0
    # A JSON body larger than this is refused with 413 before it is read whole; NDJSON bulk
    # imports stream under their own limits (BULK_MAX_BODY_BYTES, and the registry's lines).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    match_cache_seconds: float = 300.0
    # How long a firm's last answer is kept to be served, marked stale, while matching is down.
    match_stale_if_error_seconds: float = Field(default=86_400.0, gt=0)
    # Likewise, how long the owner portal's last read of a firm is kept to be served, marked
    # stale, while the registry cannot answer (its database down).
    firm_stale_if_error_seconds: float = Field(default=86_400.0, gt=0)
    stats_cache_seconds: float = 30.0
    registry_timeout_seconds: float = 10.0
    matching_timeout_seconds: float = 5.0
    model_poll_seconds: float = 10.0
    breaker_failures: int = 5
    # An open breaker lets one trial call through after this pause, doubled after each failed
    # trial up to the maximum (see clients/_breaker.py).
    breaker_reset_seconds: float = Field(default=2.0, gt=0)
    breaker_max_reset_seconds: float = Field(default=3.0, gt=0)

    def rate_limit_for(self, role: str) -> int:
        limits = {
            "portal": self.rate_limit_portal,
            "institution": self.rate_limit_institution,
            "official": self.rate_limit_official,
            "admin": self.rate_limit_admin,
        }
        return limits.get(role, self.rate_limit_portal)

    def check_secrets(self) -> None:
        super().check_secrets()
        key = self.bootstrap_admin_key
        if key is not None and len(key) < 32:
            raise RuntimeError("FINMATCH_BOOTSTRAP_ADMIN_KEY must be at least 32 characters")


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
