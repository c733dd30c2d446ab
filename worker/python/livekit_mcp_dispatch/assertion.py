"""The worker assertion (docs/api.md §9): how a worker proves to ``POST /v1/worker/credentials``
that it holds the dispatch keyring.

A compact JWS, protected header exactly ``{"alg":"HS256","kid":"<dispatch key id>","typ":"lk-mcp-worker+jwt"}``,
HMAC key = HKDF-SHA256(ikm = that dispatch key, salt = empty, info = ``livekit-mcp-dispatch worker
assertion v1``, 32 bytes), claims ``iss`` = agent name, ``aud`` = ``refresh_url``, ``sub`` = the
metadata's ``sid``, ``iat``, ``exp`` (≤ ``iat`` + 60), ``jti``.

The bytes are the TypeScript ``makeWorkerAssertion``'s for the same inputs (the contract package,
jose): the same member order and the JSON ``JSON.stringify`` writes (no spaces, non-ASCII as is,
lone surrogates escaped). The shared vectors (worker/scripts/make-vectors.ts) hold the two to it.
Standard library only: HS256 is an HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Mapping
from typing import Any

from .keyring import parse_dispatch_keyring_with_current

WORKER_ASSERTION_ALG = "HS256"
WORKER_ASSERTION_TYP = "lk-mcp-worker+jwt"
WORKER_ASSERTION_INFO = b"livekit-mcp-dispatch worker assertion v1"
#: The longest an assertion may live, ``exp - iat``, in seconds.
WORKER_ASSERTION_MAX_LIFETIME_SECONDS = 60


def worker_assertion_key(key: bytes) -> bytes:
    """The 32-byte HMAC key of the assertions made with dispatch key ``key`` (RFC 5869, empty salt)."""
    prk = hmac.new(b"\x00" * 32, key, hashlib.sha256).digest()
    return hmac.new(prk, WORKER_ASSERTION_INFO + b"\x01", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_SHORT_ESCAPES = {0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def _js_string(text: str) -> str:
    """``JSON.stringify`` of a string, read as the UTF-16 code units JavaScript would see."""
    units = text.encode("utf-16-le", "surrogatepass")
    codes = [int.from_bytes(units[i : i + 2], "little") for i in range(0, len(units), 2)]
    out = ['"']
    i = 0
    while i < len(codes):
        c = codes[i]
        if 0xD800 <= c <= 0xDBFF and i + 1 < len(codes) and 0xDC00 <= codes[i + 1] <= 0xDFFF:
            out.append(chr(0x10000 + ((c - 0xD800) << 10) + (codes[i + 1] - 0xDC00)))
            i += 2
            continue
        if c in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[c])
        elif c < 0x20 or 0xD800 <= c <= 0xDFFF:
            out.append(f"\\u{c:04x}")
        else:
            out.append(chr(c))
        i += 1
    out.append('"')
    return "".join(out)


def _js_number(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value) if isinstance(value, int) else repr(value)


def _js_json(members: list[tuple[str, Any]]) -> bytes:
    parts = []
    for name, value in members:
        text = _js_string(value) if isinstance(value, str) else _js_number(value)
        parts.append(f"{_js_string(name)}:{text}")
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def make_worker_assertion(
    keyring: str | Mapping[str, Any],
    agent_name: str,
    refresh_url: str,
    sid: str,
    now: float | None = None,
    lifetime: float = WORKER_ASSERTION_MAX_LIFETIME_SECONDS,
    jti: str | None = None,
) -> str:
    """Makes a worker assertion with the keyring's ``current`` key (docs/api.md §9).

    ``keyring`` is the ``DISPATCH_KEYS`` JSON (text or parsed); ``now`` epoch seconds (default
    now, floored); ``lifetime`` 1-60 s; ``jti`` default 16 random bytes, base64url.

    Raises :class:`KeyringError` for an invalid keyring, ``ValueError`` for an input no caller
    should pass (empty strings, a lifetime over 60 s). Never quotes a key.
    """
    if not (0 < lifetime <= WORKER_ASSERTION_MAX_LIFETIME_SECONDS):
        raise ValueError("worker assertion: lifetime must be 1-60 s")
    for field, value in (("agent_name", agent_name), ("refresh_url", refresh_url), ("sid", sid)):
        if not isinstance(value, str) or value == "":
            raise ValueError(f"worker assertion: {field} must be a non-empty string")
    kid, keys = parse_dispatch_keyring_with_current(keyring)
    issued = math.floor(time.time() if now is None else now)
    header = _js_json([("alg", WORKER_ASSERTION_ALG), ("kid", kid), ("typ", WORKER_ASSERTION_TYP)])
    claims = _js_json(
        [
            ("iss", agent_name),
            ("aud", refresh_url),
            ("sub", sid),
            ("iat", issued),
            ("exp", issued + lifetime),
            ("jti", jti if jti is not None else _b64(secrets.token_bytes(16))),
        ]
    )
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    signature = hmac.new(worker_assertion_key(keys[kid]), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
