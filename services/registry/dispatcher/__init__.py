"""The webhook dispatcher: a registry process that delivers the outbox's events, signed and retried.

``python -m services.registry.dispatcher`` claims due pending deliveries with a lease
(``store``), signs them with Standard Webhooks (``signing``), sends them with bounded timeouts to
an address checked at send time (``sender``), and records each attempt and the retry it schedules
(``schedule``) in one transaction. ``loop`` ties these together; ``metrics`` counts the outcomes.

Guarantees: at least once (a delivery whose send was cut off by a crash is sent again once its
lease expires; receivers dedupe by ``webhook-id``), and no ordering between events.
"""
