"""The strict JSON reader: a key named twice in one object is refused with its path."""

from __future__ import annotations

import json

import pytest

from shared.strict_json import DuplicateKey, loads


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b'{"employees": 40, "employees": 5000}', ("employees",)),
        (b'{"a": {"b": 1, "b": 2}}', ("a", "b")),
        (b'[{"x": 1}, {"y": [0, {"z": 1, "z": 1}]}]', (1, "y", 1, "z")),
        (b'{"a": 1, "\\u0061": 2}', ("a",)),  # the same key, escaped: still the same key
        (b'{"a": {"c": 1, "c": 1}, "a": 2}', ("a", "c")),  # the first in document order
    ],
)
def test_a_repeated_key_is_refused_with_its_path(raw: bytes, path: tuple[object, ...]) -> None:
    with pytest.raises(DuplicateKey) as caught:
        loads(raw)
    assert caught.value.path == path
    assert caught.value.key == path[-1]
    assert f'"{path[-1]}"' in caught.value.message()


@pytest.mark.parametrize(
    "raw",
    [b'{"a": 1, "b": {"a": 2}}', b'[{"a": 1}, {"a": 2}]', b"[]", b"3", '{"名": "东莞"}'.encode()],
)
def test_anything_else_reads_as_json_loads_reads_it(raw: bytes) -> None:
    assert loads(raw) == json.loads(raw)


@pytest.mark.parametrize("raw", [b"{", b'{"a": 1,}', b"\xff", b"[" * 100_000])
def test_malformed_or_absurdly_deep_json_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"Expecting|Illegal|codec|nested") as caught:
        loads(raw)
    assert not isinstance(caught.value, DuplicateKey)


def test_a_repeat_deep_inside_is_found_without_running_out_of_frames() -> None:
    depth = 900  # within the parser's nesting limit
    raw = b"[" * depth + b'{"a": 1, "a": 2}' + b"]" * depth
    with pytest.raises(DuplicateKey) as caught:
        loads(raw)
    assert caught.value.path == (0,) * depth + ("a",)
