"""The registry's tables and API schemas, one module per concept."""

from services.registry.models.access import ApiKey, AuditEntry, ImportBatch, MatchEvent, Principal
from services.registry.models.application import Application, Decision
from services.registry.models.consent import Consent
from services.registry.models.firm import Firm
from services.registry.models.history import ImportedDecision
from services.registry.models.idempotency import IdempotencyRecord
from services.registry.models.model_version import ModelStatus, ModelVersion, ModelVersionPublic
from services.registry.models.product import Institution, Product
from services.registry.models.register import Register, RegisterEntry, RegisterUpload
from services.registry.models.stats_cube import (
    stats_application_change,
    stats_cube,
    stats_cube_by,
    stats_dirty,
    stats_event_change,
    stats_firm_change,
)
from services.registry.models.training_job import TrainingJob
from services.registry.models.webhooks import (
    MatchScan,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "ApiKey",
    "Application",
    "AuditEntry",
    "Consent",
    "Decision",
    "Firm",
    "IdempotencyRecord",
    "ImportBatch",
    "ImportedDecision",
    "Institution",
    "MatchEvent",
    "MatchScan",
    "ModelStatus",
    "ModelVersion",
    "ModelVersionPublic",
    "OutboxEvent",
    "Principal",
    "Product",
    "Register",
    "RegisterEntry",
    "RegisterUpload",
    "TrainingJob",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "stats_application_change",
    "stats_cube",
    "stats_cube_by",
    "stats_dirty",
    "stats_event_change",
    "stats_firm_change",
]
