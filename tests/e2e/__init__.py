"""End to end: registry, matching and gateway as real processes over PostgreSQL and Redis."""
