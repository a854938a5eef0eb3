"""Standard Webhooks signatures: one ``v1,`` signature per secret that is still valid."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook


def signed_headers(
    msg_id: str, timestamp: datetime, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """The webhook-* headers for ``body`` sent at ``timestamp`` (UTC), signed with each secret.

    During a rotation both the new and the previous secret sign, space-separated, so a receiver
    that still holds either verifies.
    """
    if not secrets:
        raise ValueError("at least one secret signs")
    text = body.decode()
    signatures = [Webhook(secret).sign(msg_id, timestamp, text) for secret in secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
