"""Partial-update schemas derived from a full one, so no field list is written twice."""

from __future__ import annotations

import copy
from typing import Any, Optional, TypeVar

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
        optional = copy.copy(info)
        optional.default = None
        optional.default_factory = None
        annotations[field_name] = Optional[info.annotation]  # noqa: UP045 - a runtime type
        namespace[field_name] = optional
    namespace["__annotations__"] = annotations
    if config is not None:
        namespace["model_config"] = {**model.model_config, **config}
    metaclass: Any = type(model)  # SQLModel's for SQLModel classes: a class statement's work
    derived: type[Model] = metaclass(name, (model,), namespace)
    return derived
