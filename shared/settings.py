"""Settings helpers shared by the services: env prefix, and secrets that refuse placeholders."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.logging import LogFormat

DEV_PLACEHOLDER = "dev-only-change-me"


class ServiceSettings(BaseSettings):
    """Base for each service's settings; every variable is ``FINMATCH_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="FINMATCH_", extra="ignore")

    environment: str = "development"
    internal_token: str = DEV_PLACEHOLDER
    log_level: str = "INFO"
    # json: one JSON object per line, for the log pipeline; text: for a terminal (make run).
    log_format: LogFormat = "json"
    # Freeze the start-up heap so that full garbage collections skip it (see shared.heap).
    gc_freeze: bool = True

    def check_secrets(self) -> None:
        """Refuse to start outside development with a placeholder secret."""
        if self.environment != "development" and self.internal_token == DEV_PLACEHOLDER:
            raise RuntimeError(
                "FINMATCH_INTERNAL_TOKEN must be set outside development "
                f"(FINMATCH_ENVIRONMENT={self.environment})"
            )
