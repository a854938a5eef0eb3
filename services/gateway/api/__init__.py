"""The public /v1 API, one router module per resource."""
