"""Update models derived from the full schema: every field optional, every check kept."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError
from sqlmodel import SQLModel

from shared.errors import Unprocessable
from shared.schemas.firm import FirmProfile, FirmUpdate
from shared.schemas.partial import refuse_nulls
from shared.schemas.product import ProductCreate


def test_every_profile_field_and_no_other_is_updatable() -> None:
    assert set(FirmUpdate.model_fields) == set(FirmProfile.model_fields)
    assert all(not field.is_required() for field in FirmUpdate.model_fields.values())


def test_only_the_fields_given_are_set() -> None:
    update = FirmUpdate(employees=12, credit_rating=None)
    assert update.model_dump(exclude_unset=True) == {"employees": 12, "credit_rating": None}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("employees", -1),  # a bound of the shared Count type
        ("annual_revenue_yuan", 10**14),  # above MAX_YUAN
        ("name", "   "),  # stripped to nothing
        ("name", "a\x00b"),  # an AfterValidator of the shared Name type
        ("need_purpose", "x" * 501),
        ("town_code", "440000000"),  # a field validator of the profile
        ("established_on", "1899-12-31"),
        ("credit_code", "91441900MA4UJ5XW0J"),  # not part of the profile: never changes
        ("size_class", "micro"),  # derived, never entered
    ],
)
def test_each_check_of_the_full_model_still_applies(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        FirmUpdate.model_validate({field: value})
    assert [error["loc"] for error in raised.value.errors()] == [(field,)]


def test_a_null_never_reaches_a_check_of_the_full_model() -> None:
    # Whether null is allowed for a required field is decided on the merged record.
    assert FirmUpdate.model_validate({"name": None, "town_code": None}).name is None


def _required_values(model: type[SQLModel]) -> list[str]:
    return [n for n, f in model.model_fields.items() if type(None) not in get_args(f.annotation)]


@pytest.mark.parametrize(
    ("model", "field"),
    [(FirmProfile, f) for f in _required_values(FirmProfile)]
    + [(ProductCreate, f) for f in _required_values(ProductCreate)],
)
def test_a_null_for_a_field_that_needs_a_value_is_refused_naming_it(
    model: type[SQLModel], field: str
) -> None:
    with pytest.raises(Unprocessable) as raised:
        refuse_nulls(model, {"need_purpose": None, field: None})
    assert raised.value.field == field


def test_nulls_are_accepted_where_the_field_allows_them() -> None:
    refuse_nulls(FirmProfile, {"credit_rating": None, "need_amount_yuan": None})
    refuse_nulls(ProductCreate, {"min_trademarks": None, "max_years_established": None})
    assert "employees" in _required_values(FirmProfile)  # the parametrisation is not empty
    assert "amount_min_yuan" in _required_values(ProductCreate)
