"""Typed clients of the downstream services (registry, matching) and their shared machinery."""

from services.gateway.clients.base import (
    Backoff,
    CircuitBreaker,
    CircuitOpen,
    DownstreamClient,
    DownstreamError,
    DownstreamTimeout,
    DownstreamUnavailable,
    PassThrough,
)
from services.gateway.clients.matching import MatchingClient
from services.gateway.clients.registry import RegistryClient

__all__ = [
    "Backoff",
    "CircuitBreaker",
    "CircuitOpen",
    "DownstreamClient",
    "DownstreamError",
    "DownstreamTimeout",
    "DownstreamUnavailable",
    "MatchingClient",
    "PassThrough",
    "RegistryClient",
]
