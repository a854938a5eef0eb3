"""Official registers: the lines an upload holds for each kind, and the provenance a firm answer
gives each gating attribute (declared by its portal, verified by a register, or contradicted).

Which firm attribute a register verifies is declared once, on the criterion that gates on it
(``Criterion.register`` in shared/criteria); ``GATING_FIELDS`` reads it from there.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from shared.china_date import today_in_china
from shared.criteria import CRITERIA, Comparison
from shared.enums import RegisterKind, SpecializedLevel
from shared.errors import invalid_fields
from shared.types import IsoDate, Name, PositiveYuan, SafeStr

EARLIEST_LISTED = date(1990, 1, 1)
# A high-tech certificate (高新技术企业证书) runs three years from its issue date.
CERTIFICATE_YEARS = 3
# A 专精特新 recognition, at every level, holds three years; a register line gives only the
# year, so it counts from 1 January of that year to 31 December of the third.
SPECIALIZED_YEARS = 3

REGISTER_LABELS: MappingProxyType[RegisterKind, tuple[str, str]] = MappingProxyType(
    {
        RegisterKind.HIGH_TECH: ("高新技术企业认定名单", "high-tech enterprise register"),
        RegisterKind.SPECIALIZED_SME: (
            "专精特新企业名单",
            "specialised and sophisticated SME (zhuanjingtexin) register",
        ),
        RegisterKind.GREEN_LIST: ("绿色企业名录", "green enterprise list"),
        RegisterKind.GOV_PROCUREMENT_AWARDS: (
            "政府采购合同授予名单",
            "government procurement awards",
        ),
    }
)


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a common year
        return day.replace(year=day.year + years, day=28)


def _check_listed_day(value: date, what: str) -> date:
    if value < EARLIEST_LISTED:
        raise ValueError(f"{what} is before {EARLIEST_LISTED.isoformat()}")
    if value > today_in_china():
        raise ValueError(f"{what} is in the future")
    return value


Code = Annotated[
    SafeStr, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z][0-9A-Za-z._/()-]*$")
]


class RegisterLine(BaseModel):
    """One line of an upload: a firm, keyed by its unified social credit code.

    The credit code is read as text here; the upload validates it (GB 32100 check character) so
    that a bad code is an error of its line while the rest of the upload goes on. Any other
    field that is unknown, missing or invalid refuses the upload (422 naming the field).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ClassVar[RegisterKind]

    credit_code: SafeStr = Field(max_length=40, description="统一社会信用代码, 18 characters")
    name: Name | None = Field(default=None, description="the firm's name as the list gives it")

    def entry_key(self, credit_code: str) -> str:
        """What identifies the entry within its register (one per firm, unless said)."""
        return credit_code

    def validity(self) -> tuple[date, date | None]:
        """The first and last day the entry counts (None: no end)."""
        raise NotImplementedError

    def amount(self) -> int | None:
        """The yuan the entry is worth, where the register gives one (a contract's value)."""
        return None

    def grade(self) -> str | None:
        """The entry's level, where the register gives one (专精特新)."""
        return None


class HighTechLine(RegisterLine):
    kind = RegisterKind.HIGH_TECH

    certificate_number: Code = Field(description="高新技术企业证书编号, e.g. GR202344001234")
    valid_from: IsoDate = Field(description="the certificate's issue date")
    valid_to: IsoDate | None = Field(
        default=None,
        description=f"its last valid day; default and maximum {CERTIFICATE_YEARS} years on",
    )

    @model_validator(mode="after")
    def _dates(self) -> HighTechLine:
        problems: dict[str, str] = {}
        try:
            _check_listed_day(self.valid_from, "valid_from")
        except ValueError as exc:
            problems["valid_from"] = str(exc)
        longest = add_years(self.valid_from, CERTIFICATE_YEARS) - timedelta(days=1)
        if self.valid_to is not None and self.valid_to < self.valid_from:
            problems["valid_to"] = "valid_to is before valid_from"
        elif self.valid_to is not None and self.valid_to > longest:
            problems["valid_to"] = (
                f"valid_to is after {longest.isoformat()}: a certificate runs "
                f"{CERTIFICATE_YEARS} years"
            )
        if problems:
            raise invalid_fields(type(self).__name__, problems, self.model_dump())
        if self.valid_to is None:  # stored and shown as the certificate's last day
            object.__setattr__(self, "valid_to", longest)
        return self

    def validity(self) -> tuple[date, date | None]:
        return self.valid_from, self.valid_to


class SpecializedSmeLine(RegisterLine):
    kind = RegisterKind.SPECIALIZED_SME

    level: SpecializedLevel = Field(description="municipal, provincial or national (小巨人)")
    year: StrictInt = Field(ge=2000, le=2100, description="the year of recognition")

    @model_validator(mode="after")
    def _year(self) -> SpecializedSmeLine:
        if self.year > today_in_china().year:
            problem = {"year": "year is in the future"}
            raise invalid_fields(type(self).__name__, problem, self.model_dump())
        return self

    def validity(self) -> tuple[date, date | None]:
        return date(self.year, 1, 1), date(self.year + SPECIALIZED_YEARS - 1, 12, 31)

    def grade(self) -> str | None:
        return self.level.value


class GreenListLine(RegisterLine):
    kind = RegisterKind.GREEN_LIST

    list_date: IsoDate = Field(description="the day the firm was listed")
    sector: Name = Field(max_length=100, description="the list's sector, as it names it")

    @model_validator(mode="after")
    def _date(self) -> GreenListLine:
        try:
            _check_listed_day(self.list_date, "list_date")
        except ValueError as exc:
            raise invalid_fields(
                type(self).__name__, {"list_date": str(exc)}, self.model_dump()
            ) from exc
        return self

    def validity(self) -> tuple[date, date | None]:
        return self.list_date, None


class GovProcurementAwardLine(RegisterLine):
    """One awarded contract; a firm may hold several (keyed by credit code and contract)."""

    kind = RegisterKind.GOV_PROCUREMENT_AWARDS

    contract_number: Code = Field(description="the procurement contract's number")
    value_yuan: PositiveYuan
    award_date: IsoDate
    end_date: IsoDate = Field(description="the contract's last day")

    @model_validator(mode="after")
    def _dates(self) -> GovProcurementAwardLine:
        problems: dict[str, str] = {}
        try:
            _check_listed_day(self.award_date, "award_date")
        except ValueError as exc:
            problems["award_date"] = str(exc)
        if self.end_date < self.award_date:
            problems["end_date"] = "end_date is before award_date"
        if problems:
            raise invalid_fields(type(self).__name__, problems, self.model_dump())
        return self

    def entry_key(self, credit_code: str) -> str:
        return f"{credit_code}/{self.contract_number}"

    def validity(self) -> tuple[date, date | None]:
        return self.award_date, self.end_date

    def amount(self) -> int | None:
        return self.value_yuan


LINE_MODELS: MappingProxyType[RegisterKind, type[RegisterLine]] = MappingProxyType(
    {
        model.kind: model
        for model in (HighTechLine, SpecializedSmeLine, GreenListLine, GovProcurementAwardLine)
    }
)

# Every attribute a product can require (a REQUIRED criterion), with the register that
# verifies it, or None when only the portal's declaration exists (first loan, receivables).
GATING_FIELDS: MappingProxyType[str, RegisterKind | None] = MappingProxyType(
    {c.firm_fields[0]: c.register for c in CRITERIA if c.compare is Comparison.REQUIRED}
)
assert set(LINE_MODELS) == {kind for kind in GATING_FIELDS.values() if kind is not None}
# The gating attributes an official register can verify, with their register.
REGISTERED_FIELDS: MappingProxyType[str, RegisterKind] = MappingProxyType(
    {name: kind for name, kind in GATING_FIELDS.items() if kind is not None}
)


def _registered_fields(names: list[str]) -> list[str]:
    for name in names:
        if name not in REGISTERED_FIELDS:
            raise ValueError(
                f"{name!r} is not an attribute a register verifies "
                f"(one of {', '.join(REGISTERED_FIELDS)})"
            )
    return sorted(set(names))


VerifiedFields = Annotated[
    list[str],
    Field(
        default_factory=list,
        max_length=len(REGISTERED_FIELDS),
        description="the firm's gating attributes whose value an official register gives "
        "(provenance with a source): only these satisfy a product's verified_only criteria",
    ),
    AfterValidator(_registered_fields),
]


class UploadMode(StrEnum):
    REPLACE = "replace"  # PUT: the upload is the kind's whole list
    APPEND = "append"  # POST ?mode=append: adds to (or updates entries of) the list


class RegisterDiff(BaseModel):
    """How a published upload changed the register's current list (entries, not lines)."""

    added: int
    removed: int
    changed: int
    unchanged: int


class UploadSummary(BaseModel):
    """The last line of an upload's NDJSON answer."""

    kind: RegisterKind
    mode: UploadMode
    upload_id: str
    status: str = Field(description="published, or open (not complete: resend to resume)")
    version: int | None = Field(description="the register's version this upload became")
    as_of: date
    entries: int = Field(description="entries the upload holds (over every request)")
    invalid_lines: int = Field(description="lines refused (over every request)")
    diff: RegisterDiff | None


# --- provenance ---------------------------------------------------------------------------


class ProvenanceStatus(StrEnum):
    DECLARED = "declared"  # no register covers it (yet): the portal's word
    VERIFIED = "verified"  # the register agrees with the declaration
    CONTRADICTED = "contradicted"  # the register has no valid entry, or says otherwise


class RegisterReference(BaseModel):
    kind: RegisterKind = Field(description="the register")
    version: int = Field(description="the register's published version that was read")
    as_of: date = Field(description="the date of that version's list")


class AttributeProvenance(BaseModel):
    """Where a gating attribute's value comes from. ``value`` is what eligibility and the model
    use: the register's reading wherever a register covers the attribute, read today (an
    expired certificate stops counting the day after its last valid day, without an upload)."""

    status: ProvenanceStatus
    declared: StrictBool | StrictInt = Field(description="the portal's value")
    value: StrictBool | StrictInt = Field(description="the value matching uses")
    source: RegisterReference | None = Field(
        default=None, description="the register read; null when none covers the attribute yet"
    )
    evidence: list[dict[str, Any]] = Field(
        default_factory=list, description="the register's entries for the firm valid today"
    )
    reason: str | None = Field(default=None, description="why the declaration is contradicted")
