"""Canonical JSON and the SHA-256 or HMAC digests of audit entries and backups."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from statebits.core.errors import invalid_parameter

__all__ = ["canonical_json", "digest", "check_key", "ZERO_DIGEST"]

#: The previous-entry digest of the first record of a chain.
ZERO_DIGEST = "0" * 64


def canonical_json(data: Any) -> str:
    """Serialise ``data`` with sorted keys and no spaces, so equal data gives equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(text: str, key: bytes | None) -> str:
    """Return the hex SHA-256 of ``text``, or its HMAC-SHA256 under ``key`` when one is given."""
    data = text.encode("utf-8")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def check_key(key: Any, owner: str) -> bytes | None:
    """Validate an HMAC key: None, non-empty bytes, or a non-empty str (encoded as UTF-8)."""
    if key is None:
        return None
    if isinstance(key, str) and key:
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray)) and key:
        return bytes(key)
    raise invalid_parameter("key", "<redacted>" if key else key, "None or non-empty bytes or str", owner)
