"""What a criterion is: how it compares, what it reads, its unit, wording and what-if name."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.enums import RegisterKind


class Comparison(StrEnum):
    """How the firm's value is held against the product's setting."""

    AT_LEAST = "at_least"  # firm value ≥ the product's minimum
    AT_MOST = "at_most"  # firm value ≤ the product's maximum
    ONE_OF = "one_of"  # firm's code in the product's list (an empty list allows all)
    REQUIRED = "required"  # the product's flag set → the firm must hold the status
    RATING = "rating"  # firm's credit rating at or above the product's floor


class Reading(StrEnum):
    """How the firm's fields become the value a criterion compares."""

    VALUE = "value"  # the one field (a date: years since; a rating: its rank)
    SUM = "sum"  # the fields added together
    HAS = "has"  # the field is true or above zero
    LACKS = "lacks"  # the field is false or zero


class Unit(StrEnum):
    """What a value is, which decides how it is printed."""

    YUAN = "yuan"
    USD = "usd"
    COUNT = "count"
    YEARS = "years"
    RATING = "rating"
    FLAG = "flag"
    TOWN = "town"
    SECTION = "section"
    SIZE = "size"


@dataclass(frozen=True)
class Criterion:
    """One eligibility rule. Messages are format strings:

    - unmet: ``{a}`` the firm's value, ``{r}`` the requirement, ``{g}`` the gap (numbers);
      ``{names}`` the allowed ones and ``{own}`` the firm's (lists); none for flags.
    - met: ``{a}``, ``{r}``, ``{category}`` (the product's category), ``{v}`` the firm's
      value of the field a flag reads, ``{own}`` (lists).
    """

    code: str  # the product field that sets it, and the code reasons and near misses carry
    compare: Comparison
    firm_fields: tuple[str, ...]  # FirmFeatures fields it reads
    reading: Reading
    unit: Unit
    actionable: bool  # a firm can change it (grow, certify), unlike its town or its age
    label: tuple[str, str]  # (zh, en) name of the criterion
    unmet: tuple[str, str]
    met: tuple[str, str]
    met_rank: int  # order among a product's met rules: the most specific first
    example: Any  # a typical setting, for documentation and tests
    what_if: str | None = None  # the policy what-if's name for it; None: officials cannot
    unmet_unknown: tuple[str, str] | None = None  # unmet wording when the firm has no value
    # The official list that verifies the firm's value (shared/schemas/registers.py); None:
    # the value is only ever declared by the portal.
    register: RegisterKind | None = None

    @property
    def product_field(self) -> str:
        return self.code

    @property
    def is_list(self) -> bool:
        return self.compare is Comparison.ONE_OF

    @property
    def is_numeric(self) -> bool:
        """Its failures have a gap in ``unit`` (flags and lists have none)."""
        return self.compare in (Comparison.AT_LEAST, Comparison.AT_MOST, Comparison.RATING)

    @property
    def reads_age(self) -> bool:
        return "established_on" in self.firm_fields

    @property
    def description(self) -> str:
        """The product field's OpenAPI description."""
        zh, en = self.label
        meaning = {
            Comparison.AT_LEAST: "the firm's value must be at least this; null: no minimum",
            Comparison.AT_MOST: "the firm's value must be at most this; null: no maximum",
            Comparison.ONE_OF: "the firm's must be one of these; empty: no restriction",
            Comparison.REQUIRED: "true: only firms that hold this",
            Comparison.RATING: "the firm's credit rating must be this or better; null: none",
        }[self.compare]
        reads = " + ".join(self.firm_fields)
        return f"{en} / {zh}: {meaning} (reads the firm's {reads})"


def _number(
    code: str,
    reading: Reading,
    unit: Unit,
    fields: tuple[str, ...],
    label: tuple[str, str],
    unmet: tuple[str, str],
    met: tuple[str, str],
    met_rank: int,
    example: Any,
    *,
    maximum: bool = False,
    actionable: bool = True,
    what_if: str | None = None,
) -> Criterion:
    return Criterion(
        code=code,
        compare=Comparison.AT_MOST if maximum else Comparison.AT_LEAST,
        firm_fields=fields,
        reading=reading,
        unit=unit,
        actionable=actionable,
        label=label,
        unmet=unmet,
        met=met,
        met_rank=met_rank,
        example=example,
        what_if=code if what_if is None else what_if,
    )


def _flag(
    code: str,
    field: str,
    label: tuple[str, str],
    unmet: tuple[str, str],
    met: tuple[str, str],
    *,
    reading: Reading = Reading.VALUE,
    unit: Unit = Unit.FLAG,
    register: RegisterKind | None = None,
) -> Criterion:
    return Criterion(
        code=code,
        compare=Comparison.REQUIRED,
        firm_fields=(field,),
        reading=reading,
        unit=unit,
        actionable=True,
        label=label,
        unmet=unmet,
        met=met,
        met_rank=200,
        example=True,
        register=register,
    )


def _listed(
    code: str,
    field: str,
    unit: Unit,
    label: tuple[str, str],
    unmet: tuple[str, str],
    met: tuple[str, str],
    met_rank: int,
    example: list[str],
    what_if: str | None = None,
) -> Criterion:
    return Criterion(
        code=code,
        compare=Comparison.ONE_OF,
        firm_fields=(field,),
        reading=Reading.VALUE,
        unit=unit,
        actionable=False,  # a firm does not move town or sector to get a loan
        label=label,
        unmet=unmet,
        met=met,
        met_rank=met_rank,
        example=example,
        what_if=what_if,
    )


# In the order near misses list a product's failures.
