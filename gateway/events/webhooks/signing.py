"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>``.

The secret is given as Standard Webhooks verifiers expect it: base64, optionally prefixed ``whsec_``
(``python -c "import base64, os; print('whsec_' + base64.b64encode(os.urandom(32)).decode())"``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of the format, not a secret)
MIN_SECRET_BYTES = 16


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` (or bare base64) secret; ValueError when it is not one."""
    encoded = secret.removeprefix(SECRET_PREFIX).strip()
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("GATEWAY_WEBHOOK_SECRET must be base64, optionally prefixed with 'whsec_'") from exc
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"GATEWAY_WEBHOOK_SECRET must decode to at least {MIN_SECRET_BYTES} bytes")
    return key


def signature(key: bytes, message_id: str, timestamp_s: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    signed = f"{message_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(key: bytes, message_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """Every header of one delivery attempt."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": signature(key, message_id, timestamp_s, body),
    }
