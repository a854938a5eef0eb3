"""Partial-update schemas derived from a full one, so no field list is written twice."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Optional, TypeVar

from pydantic import BaseModel, ConfigDict

Model = TypeVar("Model", bound=BaseModel)


def all_optional(
    model: type[Model], name: str, doc: str, *, config: ConfigDict | None = None
) -> type[Model]:
    """A subclass of ``model`` whose fields are all optional (default None), keeping each
    field's constraints, description and validators; None is "leave unchanged".

    Validators of ``model`` run on the fields a patch sends, so they must accept None."""
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": model.__module__, "__doc__": doc}
    for field_name, info in model.model_fields.items():
        # The field's constraints and validators move onto the non-None branch, so that they
        # check a value sent and None still means "unchanged" (a validator never sees None).
        checks = [m for m in info.metadata if not type(m).__module__.startswith("sqlmodel")]
        inner = Annotated[(info.annotation, *checks)] if checks else info.annotation
        annotations[field_name] = Optional[inner]  # noqa: UP045 - built at runtime
        optional = copy.copy(info)
        optional.default = None
        optional.default_factory = None
        optional.metadata = []
        namespace[field_name] = optional
    namespace["__annotations__"] = annotations
    if config is not None:
        namespace["model_config"] = {**model.model_config, **config}
    metaclass: Any = type(model)  # SQLModel's for SQLModel classes: a class statement's work
    derived: type[Model] = metaclass(name, (model,), namespace)
    return derived
