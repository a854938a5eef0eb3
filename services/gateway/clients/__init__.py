"""Typed clients of the downstream services (registry, matching) and their shared machinery."""

from services.gateway.clients._breaker import BreakerState, CircuitBreaker
from services.gateway.clients._client import ClientOptions, DownstreamClient
from services.gateway.clients._errors import (
    CircuitOpen,
    DownstreamError,
    DownstreamTimeout,
    DownstreamUnavailable,
    PassThrough,
)
from services.gateway.clients._retry import Backoff
from services.gateway.clients.matching import MatchingClient
from services.gateway.clients.registry import RegistryClient

__all__ = [
    "Backoff",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "ClientOptions",
    "DownstreamClient",
    "DownstreamError",
    "DownstreamTimeout",
    "DownstreamUnavailable",
    "MatchingClient",
    "PassThrough",
    "RegistryClient",
]
