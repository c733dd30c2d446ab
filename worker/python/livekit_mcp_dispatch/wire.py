"""The wire format of sealed dispatch metadata (docs/api.md §3), as the contract package defines it.

Mirrors ``packages/contract`` (TypeScript); the vectors sealed with it keep the two in step.
"""

from __future__ import annotations

import base64
import binascii
import re

DISPATCH_ALG = "dir"
DISPATCH_ENC = "A256GCM"
DISPATCH_TYP = "lk-mcp-dispatch+jwt"
DISPATCH_ISSUER = "livekit-mcp-dispatch"
#: How far in the past ``exp`` may be before the metadata counts as expired (seconds).
EXP_LEEWAY_SECONDS = 30
_HEADER_KEYS = ("alg", "enc", "kid", "typ")
_MCP_TRANSPORTS = ("streamable_http", "sse")
_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_KEY_BYTES = 32
_IV_BYTES = 12
_TAG_BYTES = 16


def _b64decode_canonical(segment: str) -> bytes | None:
    """Bytes of a canonical base64url segment (no padding, no stray bits), else None."""
    if not _B64URL.match(segment) or len(segment) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != segment:
        return None
    return data
