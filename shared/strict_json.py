"""Reading JSON bodies strictly: an object that names a key twice is refused, never last-wins.

``{"employees": 40, "employees": 5000}`` is valid JSON to most parsers, which keep one of the
two values (Python's and orjson the last, others the first): what the client meant is
unknowable, and a proxy or signer in between may have read the other one. ``loads`` refuses it
with the key and its path; ``StrictJSONRoute`` makes FastAPI read request bodies with it.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

Path = tuple[str | int, ...]


class DuplicateKey(ValueError):
    """A JSON object names ``key`` twice; ``path`` leads to it from the document's root."""

    def __init__(self, key: str, path: Path) -> None:
        self.key = key
        self.path = path
        super().__init__(f'the key "{key}" appears twice in one object (at {dotted(path)})')

    def message(self, root: str = "body") -> str:
        where = dotted((root, *self.path))
        return f'duplicate key "{self.key}" at {where}: a key may appear once in a JSON object'

    def error(self) -> dict[str, Any]:
        """The error as FastAPI reports a body's: located at ("body", *path)."""
        return {
            "type": "json_duplicate_key",
            "loc": ("body", *self.path),
            "msg": self.message(),
            "input": self.key,
        }


def dotted(path: Path) -> str:
    return ".".join(str(part) for part in path) or "the root"


class _Repeated(Exception):
    """Raised from the fast parse; the slow one finds where."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Called by the C parser once per object: a dict and a length compare per object.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Repeated
    return obj


class _Pairs(list[tuple[str, Any]]):
    """An object as parsed, every pair kept (only on the error path)."""


def _first_duplicate(root: Any) -> DuplicateKey | None:
    """The first repeated key in document order, walked depth first with a stack of its own
    (the parser took the nesting: a walk of it must not run out of Python frames)."""
    # Per open object or array: its (key or index, value) pairs still to visit, its path, and
    # the keys seen so far (None for an array).
    frames: list[tuple[Iterator[tuple[Any, Any]], Path, set[str] | None]] = []

    def enter(node: Any, path: Path) -> None:
        if isinstance(node, _Pairs):
            frames.append((iter(node), path, set()))
        elif isinstance(node, list):
            frames.append((iter(enumerate(node)), path, None))

    enter(root, ())
    while frames:
        items, path, seen = frames[-1]
        step = next(items, None)
        if step is None:
            frames.pop()
            continue
        key, value = step
        if seen is not None:
            if key in seen:
                return DuplicateKey(key, (*path, key))
            seen.add(key)
        enter(value, (*path, key))
    return None


def loads(data: bytes | str) -> Any:
    """``json.loads``, except that an object naming a key twice raises ``DuplicateKey``.

    The common case costs one C-level dict build per object; only a body that repeats a key is
    parsed a second time, keeping every pair, to say where.
    """
    try:
        try:
            return json.loads(data, object_pairs_hook=_unique)
        except _Repeated:
            found = _first_duplicate(json.loads(data, object_pairs_hook=_Pairs))
            if found is None:  # pragma: no cover - both parses read the same text
                raise
            raise found from None
    except RecursionError as exc:  # thousands of nested arrays: bad input, not a crash
        raise ValueError("JSON nested too deeply") from exc


def _is_json(content_type: str | None) -> bool:
    # As FastAPI decides whether to parse a body as JSON (application/json or */*+json).
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed by ``loads``: a repeated key is a 422 naming it.

    The body is parsed here, before FastAPI reads it, and handed on as the request's parsed
    JSON, so it is parsed once. Malformed JSON is left for FastAPI to report as it always has.
    """

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if self.body_field is None:  # no JSON body (a streamed NDJSON import reads its own)
            return handler

        async def strict_json_handler(request: Request) -> Response:
            if _is_json(request.headers.get("content-type")):
                body = await request.body()
                if body:
                    try:
                        parsed = loads(body)
                    except DuplicateKey as exc:
                        raise RequestValidationError([exc.error()], body=body) from exc
                    except ValueError:
                        pass  # malformed: FastAPI's own parse reports where
                    else:
                        # Starlette's Request.json() answers from this attribute.
                        request._json = parsed
            return await handler(request)

        return strict_json_handler
