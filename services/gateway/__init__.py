"""The public API (/v1): auth, tenancy, rate limits, caching, and calls to the other services."""
