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
#: Latest ``iat``/``exp``/``nbf`` accepted: 9999-12-31T23:59:59Z, the last second both
#: JavaScript's ``Date`` and Python's ``datetime`` can hold. A later one is ``malformed``.
MAX_NUMERIC_DATE = 253_402_300_799
#: Deepest nesting of arrays and objects the claims may have; deeper is ``malformed``.
MAX_CLAIMS_DEPTH = 32
_HEADER_KEYS = ("alg", "enc", "kid", "typ")
_MCP_TRANSPORTS = ("streamable_http", "sse")
_MCP_SERVER_AUTHS = ("static", "oauth", "user_token", "none")
_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_KEY_BYTES = 32
_IV_BYTES = 12
_TAG_BYTES = 16
#: Unpaired surrogates: json.loads makes them from ``"\\ud800"``; they are no Unicode text.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: Longest integer literal parsed as an int; a longer one becomes a float (inf), as in JavaScript,
#: instead of tripping Python's int-string conversion limit (4300 digits).
_MAX_INT_DIGITS = 4000


def _parse_int(literal: str) -> int | float:
    return int(literal) if len(literal) <= _MAX_INT_DIGITS else float(literal)


def _json_nesting_depth(text: str, limit: float = float("inf")) -> int:
    """How deeply arrays and objects nest in JSON ``text``, counting brackets outside strings.

    Stops counting once past ``limit``. The same scan as the contract's ``jsonNestingDepth``, so
    both openers refuse the same bytes, and it never recurses.
    """
    depth = deepest = 0
    in_string = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif c in "]}":
            depth -= 1
        i += 1
    return deepest


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
