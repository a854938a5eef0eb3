"""Update models derived from the full schema: every field optional, every check kept."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.schemas.firm import FirmProfile, FirmUpdate


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
