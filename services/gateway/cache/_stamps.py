"""The stamp format: a cached value carries the versions it was computed from."""

from __future__ import annotations


def stamped(payload: bytes, *stamps: str) -> bytes:
    """``payload`` with the versions it was computed from (generations, a model version), so
    that one MGET can fetch it with the current versions and ``unstamped`` can check them."""
    return "|".join(stamps).encode() + b"\n" + payload


def unstamped(value: bytes | None, *stamps: str) -> bytes | None:
    """The payload of a ``stamped`` value if it carries exactly these stamps, else None."""
    if value is None:
        return None
    head, sep, payload = value.partition(b"\n")
    return payload if sep and head == "|".join(stamps).encode() else None
