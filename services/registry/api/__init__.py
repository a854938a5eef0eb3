"""The registry's internal HTTP API, one router module per resource."""
