"""Registry settings (environment variables with the FINMATCH_ prefix)."""

from __future__ import annotations

from functools import lru_cache

from shared.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    database_url: str = "sqlite:///var/finmatch.db"
    registry_host: str = "127.0.0.1"
    registry_port: int = 8001
    db_pool_size: int = 10
    bulk_batch_size: int = 5_000
    bulk_max_lines: int = 1_000_000
    page_max: int = 500


@lru_cache
def get_settings() -> RegistrySettings:
    return RegistrySettings()
