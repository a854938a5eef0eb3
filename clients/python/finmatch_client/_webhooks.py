"""Verifying a webhook the API sent (Standard Webhooks), into a typed event."""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping, Sequence

import standardwebhooks
from pydantic import ValidationError

from finmatch_client._errors import WebhookVerificationError
from finmatch_client.models.webhooks import WebhookEvent

REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# standardwebhooks' messages, by what they mean to a receiver.
_REASONS = {
    "Message timestamp too old": "stale",
    "Message timestamp too new": "future",
    "Invalid Signature Headers": "malformed",
}


def verify_webhook(
    secret: str | Sequence[str], headers: Mapping[str, str], body: bytes | str
) -> WebhookEvent:
    """The event, if ``body`` is signed with ``secret`` (the endpoint's ``whsec_...``) and
    was sent within the last 5 minutes; else WebhookVerificationError with its ``reason``.

    During a secret rotation the API signs with the new and the old secret (two
    signatures) for 24 hours; a receiver that holds both may pass both (``[new, old]``): a
    signature by either is accepted. Pass the body exactly as received (bytes), before any
    JSON parsing."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise ValueError("no webhook secret given")
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in REQUIRED_HEADERS if not lowered.get(name)]
    if missing:
        raise WebhookVerificationError("missing_headers", f"no {', '.join(missing)} header")
    try:
        text = body.decode() if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise WebhookVerificationError("invalid_body", "the body is not UTF-8") from exc
    for candidate in secrets:
        if _signed_with(candidate, lowered, text):
            return _event(lowered["webhook-id"], text)
    raise WebhookVerificationError("bad_signature", "no signature matches the secret(s) given")


def _signed_with(secret: str, headers: dict[str, str], text: str) -> bool:
    try:
        verifier = standardwebhooks.Webhook(secret)
    except (binascii.Error, ValueError, standardwebhooks.webhooks.EmptyWebhookSecretError) as exc:
        raise ValueError("not a webhook secret (whsec_ followed by base64)") from exc
    try:
        verifier.verify(text, headers, json_parse=False)
    except standardwebhooks.WebhookVerificationError as exc:
        reason = _REASONS.get(str(exc))
        if reason is None:  # "No matching signature found": perhaps another secret's
            return False
        raise WebhookVerificationError(reason, str(exc)) from exc
    except (ValueError, binascii.Error) as exc:  # a signature without "v1," or not base64
        raise WebhookVerificationError("malformed", "webhook-signature is malformed") from exc
    return True


def _event(webhook_id: str, text: str) -> WebhookEvent:
    try:
        envelope = json.loads(text)
        return WebhookEvent.model_validate({**envelope, "id": webhook_id})
    except (ValueError, TypeError, ValidationError) as exc:
        raise WebhookVerificationError("invalid_body", f"not an event: {exc}") from exc
