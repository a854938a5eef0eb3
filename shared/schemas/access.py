"""Who acts: institutions, principals and their API keys (admin), and key resolution."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from sqlmodel import AutoString, Field, SQLModel

from shared.enums import PrincipalRole
from shared.errors import invalid_fields
from shared.types import Id, Name, ShortText
from shared.vocab.categories import InstitutionKind
from shared.vocab.towns import is_town_code


class InstitutionBase(SQLModel):
    """A bank, insurer, guarantee company or lessor (the registry's table inherits it)."""

    name: Name = Field(max_length=200)
    kind: InstitutionKind = Field(sa_type=AutoString(length=16))


class InstitutionCreate(InstitutionBase):
    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


class InstitutionPublic(InstitutionBase):
    id: int
    created_at: datetime


class PrincipalBase(SQLModel):
    """Who acts: its role, name and scope."""

    role: PrincipalRole
    name: Name
    town_code: str | None = Field(default=None, max_length=9, description="None = whole city")


class PrincipalCreate(PrincipalBase):
    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    institution_id: Id | None = None

    @model_validator(mode="after")
    def _scope(self) -> PrincipalCreate:
        problems: dict[str, str] = {}
        if self.role is PrincipalRole.INSTITUTION and self.institution_id is None:
            problems["institution_id"] = "an institution principal needs institution_id"
        if self.role is not PrincipalRole.INSTITUTION and self.institution_id is not None:
            problems["institution_id"] = "institution_id is only for institution principals"
        if self.town_code is not None:
            if self.role is not PrincipalRole.OFFICIAL:
                problems["town_code"] = "town_code is only for official principals"
            elif not is_town_code(self.town_code):
                problems["town_code"] = f"unknown town code {self.town_code!r}"
        if problems:
            raise invalid_fields(type(self).__name__, problems, self.model_dump())
        return self


class PrincipalPublic(PrincipalBase):
    id: int
    institution_id: int | None
    created_at: datetime


class KeyCreate(BaseModel):
    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(extra="forbid")

    principal_id: Id
    label: ShortText = ""


class KeyCreated(BaseModel):
    id: int
    principal_id: int
    prefix: str
    label: str
    key: str = Field(description="shown once; only its digest is stored")


class KeyPublic(BaseModel):
    id: int
    principal_id: int
    prefix: str
    label: str
    revoked: bool


class KeyResolve(BaseModel):
    key_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AuditPublic(BaseModel):
    """One entry of the audit log: who did what to which record, and when."""

    id: int
    at: datetime
    principal_id: int | None
    action: str
    entity: str
    entity_id: str | None
    request_id: str | None
    detail: dict[str, Any]
