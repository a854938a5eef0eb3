"""Who acts: institutions, principals and their API keys (admin), and key resolution."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict, JsonValue
from sqlmodel import AutoString, Field, SQLModel

from shared.enums import PrincipalRole
from shared.errors import invalid_fields
from shared.types import MAX_ID, Id, Name, safe_text
from shared.vocab.categories import InstitutionKind
from shared.vocab.towns import TOWNS_BY_CODE, is_town_code


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


_NULL: JsonDict = {"type": "null"}
# Which scope goes with which role, stated in the schema (the model validator enforces it).
_ONE_SCOPE: JsonDict = {
    "oneOf": [
        {
            "title": "an institution's principal: its institution",
            "required": ["role", "institution_id"],
            "properties": {
                "role": {"const": PrincipalRole.INSTITUTION.value},
                "institution_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "town_code": _NULL,
            },
        },
        {
            "title": "an official: of one town, or of the whole city (town_code left out)",
            "required": ["role"],
            "properties": {
                "role": {"const": PrincipalRole.OFFICIAL.value},
                "town_code": {"anyOf": [{"enum": list[JsonValue](sorted(TOWNS_BY_CODE))}, _NULL]},
                "institution_id": _NULL,
            },
        },
        {
            "title": "a portal or an admin: no scope",
            "required": ["role"],
            "properties": {
                "role": {"enum": [PrincipalRole.PORTAL.value, PrincipalRole.ADMIN.value]},
                "town_code": _NULL,
                "institution_id": _NULL,
            },
        },
    ],
    "examples": [
        {"role": "official", "name": "塘厦镇金融办", "town_code": "441900116"},
        {"role": "institution", "name": "东莞银行 API", "institution_id": 1},
    ],
}


class PrincipalCreate(PrincipalBase):
    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_SCOPE)  # type: ignore[assignment]

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


LABEL_LENGTH = 200  # the api_key table's label column


class KeyCreate(BaseModel):
    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "principal_id": 3,
                    "label": "portal production",
                    "expires_at": "2099-12-31T00:00:00+08:00",
                }
            ]
        },
    )

    principal_id: Id
    label: safe_text(LABEL_LENGTH) = ""  # type: ignore[valid-type]
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="when the key stops working (with its UTC offset); in the future. "
        "None: until revoked",
    )

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            at = value.astimezone(UTC)
        except OverflowError as exc:  # e.g. 9999-12-31T23:00-12:00 is past datetime.max in UTC
            raise ValueError("expires_at is out of range") from exc
        if at <= datetime.now(UTC):
            raise ValueError("expires_at must be in the future")
        return at


class KeyCreated(BaseModel):
    id: int
    principal_id: int
    prefix: str
    label: str
    expires_at: datetime | None = None
    key: str = Field(description="shown once; only its digest is stored")


class KeyPublic(BaseModel):
    """A key as listed: never the key itself, only its first characters."""

    id: int
    principal_id: int
    prefix: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(
        description="when the key was last seen in use, to within about a minute and a half"
    )
    revoked: bool
    revoked_at: datetime | None


class KeyResolve(BaseModel):
    key_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class KeyResolved(PrincipalPublic):
    """The principal a key acts as, and the key facts the gateway needs to hold it in a cache."""

    key_id: int
    key_expires_at: datetime | None


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
