"""The matching service's internal HTTP API."""
