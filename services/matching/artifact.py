"""Signed model artifacts: only bytes we wrote, for this feature set and scikit-learn, are loaded.

Layout (big-endian):

    MAGIC (16 bytes) | format (u16) | payload length (u64) | HMAC-SHA256 (32 bytes) | payload
    payload = meta length (u32) | meta (JSON) | pickle of the estimator

The HMAC covers everything but itself, so neither the header nor the payload can change
unnoticed. Pickles run code when loaded: nothing is unpickled before the signature checks out,
and the JSON meta (feature names, library versions) is checked before the estimator is touched.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import struct
from typing import Any

import orjson
import sklearn

from services.matching.features import FEATURE_NAMES
from services.matching.model import LearnedModel
from services.matching.train import TrainResult

MAGIC = b"FINMATCH-MODEL\x00\x01"
FORMAT_VERSION = 1
_HEAD = struct.Struct(">HQ")
_META_LEN = struct.Struct(">I")
_MAC_SIZE = hashlib.sha256().digest_size
HEADER_SIZE = len(MAGIC) + _HEAD.size + _MAC_SIZE


class ArtifactError(Exception):
    """The blob is not a model artifact this code may load; the message says why."""


def _mac(key: bytes, head: bytes, payload: bytes) -> bytes:
    if not key:
        raise ArtifactError("an empty signing key signs nothing")
    return hmac.new(key, head + payload, hashlib.sha256).digest()


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def dump(result: TrainResult, key: bytes) -> bytes:
    """Serialise and sign a trained model; ``meta`` must be JSON-serialisable."""
    meta = {
        **result.meta,
        "version": result.version,
        "feature_names": list(FEATURE_NAMES),
        "sklearn_version": sklearn.__version__,
    }
    meta_bytes = orjson.dumps(meta)
    payload = (
        _META_LEN.pack(len(meta_bytes))
        + meta_bytes
        + pickle.dumps(result.estimator, protocol=pickle.HIGHEST_PROTOCOL)
    )
    head = MAGIC + _HEAD.pack(FORMAT_VERSION, len(payload))
    return head + _mac(key, head, payload) + payload


def _verified_payload(blob: bytes, key: bytes) -> bytes:
    if not blob.startswith(MAGIC):
        raise ArtifactError("not a finmatch model artifact (wrong magic header)")
    if len(blob) < HEADER_SIZE:
        raise ArtifactError(f"truncated artifact: {len(blob)} bytes, header alone is {HEADER_SIZE}")
    head = blob[: len(MAGIC) + _HEAD.size]
    version, length = _HEAD.unpack(head[len(MAGIC) :])
    if version != FORMAT_VERSION:
        raise ArtifactError(f"artifact format {version}; this code reads format {FORMAT_VERSION}")
    signature, payload = blob[len(head) : HEADER_SIZE], blob[HEADER_SIZE:]
    if len(payload) != length:
        raise ArtifactError(
            f"artifact payload is {len(payload)} bytes, the header says {length}: "
            "truncated or padded"
        )
    if not hmac.compare_digest(signature, _mac(key, head, payload)):
        raise ArtifactError("artifact signature does not verify: wrong key or modified bytes")
    return payload


def read_meta(blob: bytes, key: bytes) -> dict[str, Any]:
    """The verified metadata of an artifact, without unpickling its estimator."""
    payload = _verified_payload(blob, key)
    (meta_len,) = _META_LEN.unpack_from(payload)
    try:
        meta = orjson.loads(payload[_META_LEN.size : _META_LEN.size + meta_len])
    except orjson.JSONDecodeError as exc:
        raise ArtifactError(f"artifact metadata is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArtifactError("artifact metadata is not a JSON object")
    return meta


def load(blob: bytes, key: bytes) -> LearnedModel:
    """Verify, check compatibility, then unpickle; any refusal is an ArtifactError."""
    meta = read_meta(blob, key)
    names = meta.get("feature_names")
    if names != list(FEATURE_NAMES):
        theirs = len(names) if isinstance(names, list) else names
        raise ArtifactError(
            f"artifact was trained on other features ({theirs} names; this code has "
            f"{len(FEATURE_NAMES)}): retrain with this version"
        )
    trained_with = str(meta.get("sklearn_version", "?"))
    if _major_minor(trained_with) != _major_minor(sklearn.__version__):
        raise ArtifactError(
            f"artifact was trained with scikit-learn {trained_with}, this process runs "
            f"{sklearn.__version__}: retrain (pickles are not portable across minor versions)"
        )
    payload = blob[HEADER_SIZE:]
    (meta_len,) = _META_LEN.unpack_from(payload)
    try:
        estimator = pickle.loads(
            payload[_META_LEN.size + meta_len :]
        )  # signed by us: verified above
    except Exception as exc:  # a signed but broken pickle can raise almost anything
        raise ArtifactError(f"artifact estimator could not be unpickled: {exc!r}") from exc
    if not callable(getattr(estimator, "predict_proba", None)):
        raise ArtifactError(f"artifact holds a {type(estimator).__name__}, not a classifier")
    try:
        return LearnedModel(estimator, meta)
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"artifact metadata is incomplete: {exc}") from exc
