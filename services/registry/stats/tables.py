"""The rows officials' statistics read, and the status and size values they count."""

from __future__ import annotations

from services.registry.models import Application, Firm, Institution, MatchEvent, Product
from services.registry.models.columns import table_of
from shared.enums import ApplicationStatus
from shared.vocab.size_class import SizeClass

APP = table_of(Application)
FIRM = table_of(Firm)
PROD = table_of(Product)
INST = table_of(Institution)
EVENT = table_of(MatchEvent)

APPROVED = ApplicationStatus.APPROVED.value
REJECTED = ApplicationStatus.REJECTED.value
SUBMITTED = ApplicationStatus.SUBMITTED.value
SMALL_AND_MICRO = (SizeClass.SMALL.value, SizeClass.MICRO.value)
