"""Partial-update models derived from a full schema, so that no field is declared twice."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Annotated, Any, Optional, TypeVar, get_args

from pydantic import ConfigDict, Field, create_model, field_validator
from pydantic.fields import FieldInfo
from sqlmodel import SQLModel

from shared.errors import Unprocessable

M = TypeVar("M", bound=SQLModel)


class _PartialBase(SQLModel):
    # A misspelt or read-only field (credit_code, id, version) is an error, not a silent no-op.
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


def _optional(info: FieldInfo) -> tuple[Any, FieldInfo]:
    """The same field, optional and defaulting to None, with the same constraints.

    The constraints and validators move into the annotation (``Annotated[int, Ge(0)] | None``)
    so that they check a given value and never see the None of a field left out.
    """
    # SQLModel's column options (sa_type, …) are the table's business, not an update's.
    checks: list[Any] = [m for m in info.metadata if not type(m).__module__.startswith("sqlmodel")]
    if info.json_schema_extra is not None:
        # What the schema says of a value (a town code's enum, a section's pattern) holds for
        # the value an update gives, so it goes beside the constraints, not on the union.
        checks.append(Field(json_schema_extra=info.json_schema_extra))
    inner = Annotated[(info.annotation, *checks)] if checks else info.annotation
    # No default_factory: an empty list would make "not given" look like "given".
    # Left out is fine; null only where the full model takes None (refuse_nulls answers 422
    # to the others), and the schema says so.
    extra = None if _admits_none(info.annotation) else null_left_out
    field = FieldInfo(
        default=None, description=info.description, title=info.title, json_schema_extra=extra
    )
    return Optional[inner], field  # noqa: UP045 - built at run time from a value


def _admits_none(annotation: Any) -> bool:
    return annotation is None or type(None) in get_args(annotation)


def null_left_out(schema: dict[str, Any]) -> None:
    """A field's schema ``{"anyOf": [X, {"type": "null"}], ...}`` as ``X`` with the rest: for
    an update's field that may be left out (None in Python) but not sent as null."""
    options = [o for o in schema.pop("anyOf", []) if o != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    schema.pop("default", None)


def _skipping_none(check: Callable[..., Any]) -> Callable[..., Any]:
    takes_info = len(inspect.signature(check).parameters) > 1

    def optional_check(cls: type[Any], value: Any, info: Any) -> Any:
        if value is None:
            return None
        return check(value, info) if takes_info else check(value)

    return optional_check


def partial_model(model: type[M], *, exclude: Collection[str] = ()) -> type[SQLModel]:
    """A base of ``model``'s fields, all optional; its field validators run on the values given.

    Subclass it to name the update model (``class FirmUpdate(partial_model(FirmProfile))``).

    Model-level validators (a range, a pairing of two fields) are not carried over: a partial
    update is checked by merging it onto the stored record and validating the whole ``model``.
    """
    fields = {
        field: _optional(info) for field, info in model.model_fields.items() if field not in exclude
    }
    validators = {
        f"_{key}": field_validator(*decorator.info.fields, mode=decorator.info.mode)(
            classmethod(_skipping_none(decorator.func))
        )
        for key, decorator in model.__pydantic_decorators__.field_validators.items()
        if any(field in fields for field in decorator.info.fields)
    }
    partial = create_model(  # type: ignore[call-overload]
        f"Partial{model.__name__}",
        __base__=_PartialBase,
        __module__=model.__module__,
        __validators__=validators,
        **fields,
    )
    result: type[SQLModel] = partial
    return result


def refuse_nulls(model: type[SQLModel], changes: Mapping[str, Any]) -> None:
    """A partial update's null for a field that ``model`` requires a value of: 422 naming it
    (clearer than the merged record's type error, and before anything is written)."""
    for name, value in changes.items():
        field = model.model_fields.get(name)
        if value is None and field is not None and type(None) not in get_args(field.annotation):
            raise Unprocessable(f"{name} cannot be null", field=name)
