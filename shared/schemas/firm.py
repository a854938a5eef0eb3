"""The firm (SME) profile, each field declared once: what portals submit and read, what the
registry's table stores (it inherits these classes) and what matching ranks on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Strict,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic import (
    Field as PydanticField,
)
from sqlmodel import Field, SQLModel

from shared.china_date import today_in_china
from shared.enums import CreditRating
from shared.errors import invalid_fields
from shared.schemas.partial import partial_model
from shared.schemas.registers import GATING_FIELDS, AttributeProvenance, ProvenanceStatus
from shared.types import (
    YUAN_PER_USD,
    Count,
    Flag,
    IsoDate,
    Name,
    PositiveYuan,
    ShortText,
    TermMonths,
    Usd,
    Yuan,
)
from shared.vocab.credit_code import normalize_credit_code
from shared.vocab.industries import (
    FIRST_DIVISION,
    LAST_DIVISION,
    SECTIONS_BY_LETTER,
    validate_industry,
)
from shared.vocab.size_class import SizeClass
from shared.vocab.towns import TOWNS_BY_CODE, is_town_code

# Money columns are BIGINT: yuan figures pass 2**31 well within an SME's range.
_MONEY = sa.BigInteger

EARLIEST_ESTABLISHED = date(1900, 1, 1)
# The bounds beside the int, not on the optional field: there they were written into the
# schema as "ge"/"le", which JSON Schema does not know, instead of minimum/maximum.
Division = Annotated[int, Strict(), PydanticField(ge=FIRST_DIVISION, le=LAST_DIVISION)]


def check_town(value: str) -> str:
    value = value.strip()
    if not is_town_code(value):
        raise ValueError(f"unknown town code {value!r}; see /v1/reference/towns")
    return value


def check_established(value: date) -> date:
    if value < EARLIEST_ESTABLISHED:
        raise ValueError("established date is before 1900")
    if value > today_in_china():
        raise ValueError("established date is in the future")
    return value


class InputWarning(BaseModel):
    """A figure taken as given that looks wrong: the portal may ask the firm to check it."""

    code: str = Field(description="machine-readable, e.g. export_exceeds_revenue")
    field: str = Field(description="the field to check")
    message: str


def firm_warnings(annual_revenue_yuan: int, export_revenue_usd: int) -> list[InputWarning]:
    """What looks inconsistent in a firm's figures (the firm is stored as given all the same)."""
    export_yuan = export_revenue_usd * YUAN_PER_USD  # exact: Decimal
    if export_yuan <= annual_revenue_yuan:
        return []
    message = (
        f"export revenue of US${export_revenue_usd:,} is about ¥{export_yuan:,.0f} at "
        f"{YUAN_PER_USD} yuan per US dollar, more than the annual revenue of "
        f"¥{annual_revenue_yuan:,}: exports are part of revenue, please check both figures"
    )
    field = "export_revenue_usd"
    return [InputWarning(code="export_exceeds_revenue", field=field, message=message)]


class FirmAttributes(SQLModel):
    """What describes a firm for matching: everything but its identity and free text."""

    town_code: str = Field(
        max_length=9,
        description="9-digit statistical town code, 4419… (GET /v1/reference/towns)",
        schema_extra={
            "json_schema_extra": {"enum": sorted(TOWNS_BY_CODE), "examples": ["441900116"]}
        },
    )
    industry_section: str = Field(
        max_length=1,
        description="GB/T 4754-2017 section A–T (either case)",
        schema_extra={"json_schema_extra": {"pattern": "^[A-Ta-t]$", "examples": ["C"]}},
    )
    industry_division: Division | None = Field(
        default=None,
        description="the 2-digit division, one of its section's (GET /v1/reference/industries)",
        schema_extra={"examples": [39]},
    )
    established_on: IsoDate
    employees: Count
    annual_revenue_yuan: Yuan = Field(sa_type=_MONEY)
    total_assets_yuan: Yuan = Field(sa_type=_MONEY)
    export_revenue_usd: Usd = Field(default=0, sa_type=_MONEY)
    invention_patents: Count = 0
    utility_patents: Count = 0
    trademarks: Count = 0
    is_high_tech: Flag = False
    is_specialized_sme: Flag = Field(default=False, description="专精特新")
    gov_procurement_contracts_yuan: Yuan = Field(default=0, sa_type=_MONEY)
    core_enterprise_receivables_yuan: Yuan = Field(default=0, sa_type=_MONEY)
    is_green_listed: Flag = False
    has_borrowed_before: Flag = Field(default=True, description="False marks a 首贷户 candidate")
    collateral_real_estate_yuan: Yuan = Field(default=0, sa_type=_MONEY)
    collateral_equipment_yuan: Yuan = Field(default=0, sa_type=_MONEY)
    credit_rating: CreditRating | None = Field(default=None, sa_type=sa.String(3))
    need_amount_yuan: PositiveYuan | None = Field(default=None, sa_type=_MONEY)
    need_term_months: TermMonths | None = None

    @field_validator("town_code")
    @classmethod
    def _town(cls, value: str) -> str:
        return check_town(value)

    @field_validator("established_on")
    @classmethod
    def _established(cls, value: date) -> date:
        return check_established(value)

    @model_validator(mode="after")
    def _industry(self) -> FirmAttributes:
        try:
            section, division = validate_industry(self.industry_section, self.industry_division)
        except ValueError as exc:
            # An unknown letter is the section's fault; a mismatch is the pair's.
            fields = ["industry_section"]
            if self.industry_section.strip().upper() in SECTIONS_BY_LETTER:
                fields.append("industry_division")
            values = {
                "industry_section": self.industry_section,
                "industry_division": self.industry_division,
            }
            raise invalid_fields(
                type(self).__name__, dict.fromkeys(fields, str(exc)), values
            ) from exc
        self.industry_section, self.industry_division = section, division
        return self


class FirmFeatures(FirmAttributes):
    """A firm as the matching service sees it: its attributes and the derived size class."""

    size_class: SizeClass


def effective_features(firm: Mapping[str, Any]) -> dict[str, Any]:
    """A firm answer's features as matching must rank them: each gating attribute at the value
    its provenance gives (the register's, where a register covers it), the rest as declared."""
    features = {name: firm[name] for name in FirmFeatures.model_fields if name in firm}
    for name, provenance in (firm.get("provenance") or {}).items():
        if name in features:
            features[name] = provenance["value"]
    return features


def verified_fields(firm: Mapping[str, Any]) -> list[str]:
    """A firm answer's gating attributes whose value an official register gives (a provenance
    with a source, verified or contradicted): what a verified_only criterion accepts."""
    return sorted(
        name
        for name, provenance in (firm.get("provenance") or {}).items()
        if provenance.get("source") is not None
    )


class FirmProfile(FirmAttributes):
    """Everything a portal submits about a firm, apart from its credit code."""

    name: Name = Field(max_length=200)
    need_purpose: ShortText | None = Field(default=None, max_length=500)
    consent_matching: Flag = Field(
        default=True, description="the firm agreed that its profile is used to rank products"
    )


class FirmCreate(FirmProfile):
    """A firm as a portal submits it; the credit code is the natural key."""

    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    credit_code: str = Field(
        max_length=40,
        description="统一社会信用代码 (GB 32100-2015), 18 characters with its check character; "
        "spaces, '-', lower case and full-width forms are read as the canonical form",
        schema_extra={
            "json_schema_extra": {
                # The canonical form (either case); the mod-31 check character is beyond a
                # pattern, so a code that fits it can still be refused naming credit_code.
                "pattern": "^[0-9]{8}[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]{10}$",
                "examples": ["914419001E4B4DTRCN"],
            }
        },
    )

    @field_validator("credit_code")
    @classmethod
    def _credit_code(cls, value: str) -> str:
        return normalize_credit_code(value)


class FirmUpdate(partial_model(FirmProfile)):  # type: ignore[misc]
    """A partial update; only the fields given change. The credit code never changes."""


class FirmPublic(FirmProfile):
    id: int
    credit_code: str
    owner_principal_id: int
    size_class: SizeClass
    size_ruleset: str
    created_at: datetime
    updated_at: datetime
    version: int
    provenance: dict[str, AttributeProvenance] = Field(
        description="each gating attribute ("
        + ", ".join(GATING_FIELDS)
        + "): declared by the portal, verified by an official register, or contradicted by "
        "it; `value` is what matching uses (the register's wherever one covers it)"
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="figures taken as given that look inconsistent (export revenue above "
        f"annual revenue, at {YUAN_PER_USD} yuan per US dollar), and declarations an official "
        "register contradicts (code declaration_contradicted); [] when none"
    )
    @property
    def warnings(self) -> list[InputWarning]:
        found = firm_warnings(self.annual_revenue_yuan, self.export_revenue_usd)
        for name, provenance in self.provenance.items():
            if provenance.status is ProvenanceStatus.CONTRADICTED:
                message = provenance.reason or "an official register contradicts the declaration"
                found.append(
                    InputWarning(code="declaration_contradicted", field=name, message=message)
                )
        return found
