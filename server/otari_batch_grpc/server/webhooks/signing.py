"""A webhook's headers as Standard Webhooks has them (the open spec; `standardwebhooks` signs and, in a receiver,
verifies): `webhook-id`, `webhook-timestamp` and `webhook-signature`, one `v1,<signature>` per secret that signs,
space-separated (while a secret is rotated, the old and the new both sign, and a receiver that knows either one
verifies)."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A signing secret: 32 random bytes, as the spec writes them (`whsec_` and base64)."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()


def signed_headers(secrets: Sequence[str], message_id: str, at: float, body: bytes) -> dict[str, str]:
    """The headers that carry `body` (sent at `at`, epoch seconds) signed with each of `secrets`."""
    if not secrets:
        raise ValueError("a webhook is signed with one secret at least")
    when = datetime.fromtimestamp(at, UTC)
    signatures = " ".join(Webhook(secret).sign(message_id, when, body) for secret in secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at)),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
