"""A firm's consent to share its profile with one institution (PIPL art. 14-15), as its portal
sees it: granted by applying to that institution's products, revocable at any time."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class ConsentStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


_EXAMPLE: dict[str, JsonValue] = {
    "id": 17,
    "firm_id": 42,
    "institution_id": 3,
    "institution_name": "东莞农村商业银行",
    "application_ids": [311, 348],
    "granted_at": "2027-01-12T08:30:00Z",
    "revoked_at": "2027-03-02T09:15:00Z",
    "status": "revoked",
}


class ConsentPublic(BaseModel):
    """Which institution received the firm's profile, through which applications, and whether
    it may still read it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    id: int
    firm_id: int
    institution_id: int
    institution_name: str
    application_ids: list[int] = Field(
        description="the applications that shared the profile under this consent, oldest first"
    )
    granted_at: datetime = Field(description="when the first of these applications was made")
    revoked_at: datetime | None = Field(description="null while the consent stands")
    status: ConsentStatus = Field(
        description="`active`: the institution may read the profile while one of these "
        "applications is not withdrawn; `revoked`: it may not, and a new application to it "
        "grants a new consent"
    )
