"""The registry's tables and API schemas, one module per concept."""

from services.registry.models.access import (
    ApiKey,
    AuditEntry,
    ImportBatch,
    MatchEvent,
    Principal,
    PrincipalCreate,
    PrincipalPublic,
)
from services.registry.models.application import (
    Application,
    ApplicationCreate,
    ApplicationPublic,
    Decision,
    DecisionCreate,
    DecisionPublic,
)
from services.registry.models.firm import Firm, FirmCreate, FirmPublic, FirmUpdate
from services.registry.models.model_version import ModelStatus, ModelVersion, ModelVersionPublic
from services.registry.models.product import (
    Institution,
    InstitutionCreate,
    InstitutionPublic,
    Product,
    ProductCreate,
    ProductPublic,
    ProductUpdate,
)
from services.registry.models.stats_cube import stats_cube, stats_dirty

__all__ = [
    "ApiKey",
    "Application",
    "ApplicationCreate",
    "ApplicationPublic",
    "AuditEntry",
    "Decision",
    "DecisionCreate",
    "DecisionPublic",
    "Firm",
    "FirmCreate",
    "FirmPublic",
    "FirmUpdate",
    "ImportBatch",
    "Institution",
    "InstitutionCreate",
    "InstitutionPublic",
    "MatchEvent",
    "ModelStatus",
    "ModelVersion",
    "ModelVersionPublic",
    "Principal",
    "PrincipalCreate",
    "PrincipalPublic",
    "Product",
    "ProductCreate",
    "ProductPublic",
    "ProductUpdate",
    "stats_cube",
    "stats_dirty",
]
