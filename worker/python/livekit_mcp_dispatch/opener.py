"""Opens sealed dispatch metadata (docs/api.md §3: a compact JWE, ``dir`` + ``A256GCM``).

Needs only ``jwcrypto``, imported when a token is decrypted.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .errors import (
    BadHeaderError,
    DecryptFailedError,
    ExpiredError,
    MalformedError,
    UnknownKidError,
    WrongAudienceError,
    WrongRoomError,
)
from .grants import DispatchGrant, McpServerGrant
from .keyring import parse_dispatch_keyring
from .wire import (
    _HEADER_KEYS,
    _IV_BYTES,
    _MCP_SERVER_AUTHS,
    _MCP_TRANSPORTS,
    _TAG_BYTES,
    DISPATCH_ALG,
    DISPATCH_ENC,
    DISPATCH_ISSUER,
    DISPATCH_TYP,
    EXP_LEEWAY_SECONDS,
    MAX_CLAIMS_DEPTH,
    MAX_NUMERIC_DATE,
    _b64decode_canonical,
    _json_nesting_depth,
    _LONE_SURROGATE,
    _parse_int,
)


def _check_header(segment: str) -> str:
    """Returns the header's kid, or raises BadHeaderError."""
    data = _b64decode_canonical(segment)
    header: Any = None
    text = ""
    if data is not None:
        try:
            text = data.decode("utf-8")
            header = json.loads(
                text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant, parse_int=_parse_int
            )
        except (UnicodeDecodeError, ValueError, RecursionError):
            header = None
    if not isinstance(header, dict) or set(header) != set(_HEADER_KEYS):
        raise BadHeaderError("Sealed dispatch metadata has an unexpected protected header.")
    if (
        header["alg"] != DISPATCH_ALG
        or header["enc"] != DISPATCH_ENC
        or header["typ"] != DISPATCH_TYP
        or not isinstance(header["kid"], str)
        or header["kid"] == ""
        # A lone surrogate ("\ud800") is no Unicode text: no key id, and a bad header in both openers.
        or _LONE_SURROGATE.search(header["kid"]) is not None
        # Minimal JSON only, like the TypeScript opener (JSON.stringify of the parsed header).
        or json.dumps(header, separators=(",", ":"), ensure_ascii=False) != text
    ):
        raise BadHeaderError("Sealed dispatch metadata has an unexpected protected header.")
    return header["kid"]


def _reject_constant(name: str) -> Any:
    # NaN / Infinity are not JSON; JavaScript's JSON.parse refuses them too.
    raise ValueError(f"not JSON: {name}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate member")
        result[key] = value
    return result


def _decrypt(token: str, key: bytes) -> bytes:
    """AES-256-GCM decryption through jwcrypto, accepting only dir + A256GCM."""
    from jwcrypto import jwe, jwk

    failed = False
    plaintext = b""
    opened = jwe.JWE(algs=[DISPATCH_ALG, DISPATCH_ENC])
    try:
        opened.deserialize(token, key=jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(key).rstrip(b"=").decode()))
        plaintext = opened.payload
    except Exception:  # noqa: BLE001 - any jwcrypto failure is a decryption failure
        # jwcrypto authenticates an empty plaintext, keeps it, then reports "no recipient matched"
        # because b"" is falsy. jose opens it; both openers then refuse it as malformed claims.
        failed = opened.plaintext != b""
    # Raised outside the except block so no jwcrypto exception is chained onto it.
    if failed:
        raise DecryptFailedError("Sealed dispatch metadata could not be decrypted with the keyring.")
    return plaintext


def _malformed(name: str) -> MalformedError:
    return MalformedError(f'Sealed dispatch metadata claim "{name}" is missing or invalid.')


def _parse_server(server: Any) -> McpServerGrant | None:
    if not isinstance(server, dict):
        return None
    name, url, transport = server.get("name"), server.get("url"), server.get("transport")
    headers, allowed = server.get("headers"), server.get("allowed_tools", _MISSING)
    if not isinstance(name, str) or not name or not isinstance(url, str) or not url:
        return None
    if transport not in _MCP_TRANSPORTS:
        return None
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        return None
    if allowed is not _MISSING and not (isinstance(allowed, list) and all(isinstance(t, str) for t in allowed)):
        return None
    if "auth" in server and server["auth"] not in _MCP_SERVER_AUTHS:
        return None
    if "expires_at" in server and not _is_numeric_date(server["expires_at"]):
        return None
    return McpServerGrant(
        name=name,
        url=url,
        transport=transport,
        headers=dict(headers),
        allowed_tools=tuple(allowed) if isinstance(allowed, list) else None,
        auth=server.get("auth"),
        expires_at=server.get("expires_at"),
    )


def _is_numeric_date(value: Any) -> bool:
    # bool is an int in Python; JSON true is not a number. Bounds first: a huge int has no float.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return 0 <= value <= MAX_NUMERIC_DATE and math.isfinite(value)


def _parse_claims(plaintext: bytes) -> dict[str, Any]:
    # Errors are raised outside the except blocks so no exception is chained onto them.
    text: str | None = None
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        pass
    value: Any = _INVALID
    if text is not None:
        if _json_nesting_depth(text, MAX_CLAIMS_DEPTH) > MAX_CLAIMS_DEPTH:
            raise MalformedError("Sealed dispatch metadata claims are nested too deeply.")
        try:
            value = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
        except (ValueError, RecursionError):
            pass
    if value is _INVALID:
        raise MalformedError("Sealed dispatch metadata claims are not JSON.")
    if not isinstance(value, dict):
        raise MalformedError("Sealed dispatch metadata claims are not a JSON object.")
    if value.get("iss") != DISPATCH_ISSUER:
        raise _malformed("iss")
    for name in ("aud", "sub", "tid", "room", "pid", "jti"):
        if not isinstance(value.get(name), str) or value[name] == "":
            raise _malformed(name)
    for name in ("iat", "exp"):
        if not _is_numeric_date(value.get(name)):
            raise _malformed(name)
    if "nbf" in value and not _is_numeric_date(value["nbf"]):
        raise _malformed("nbf")
    if "client" in value and not isinstance(value["client"], str):
        raise _malformed("client")
    for name in ("sid", "refresh_url"):
        if name in value and (not isinstance(value[name], str) or value[name] == ""):
            raise _malformed(name)
    if "refresh_at" in value and not _is_numeric_date(value["refresh_at"]):
        raise _malformed("refresh_at")
    servers = value.get("mcp_servers")
    if not isinstance(servers, list):
        raise _malformed("mcp_servers")
    grants = []
    for server in servers:
        grant = _parse_server(server)
        if grant is None:
            raise _malformed("mcp_servers")
        grants.append(grant)
    value["mcp_servers"] = tuple(grants)
    return value


_INVALID = object()
_MISSING = object()


def open_dispatch_metadata(
    metadata: str,
    keyring_json: str | Mapping[str, Any],
    agent_name: str,
    room_name: str,
    now: float | datetime | None = None,
) -> DispatchGrant:
    """Opens sealed dispatch metadata (docs/api.md §3) and returns the job's grant.

    Checks, in the TypeScript opener's order: five compact segments (``malformed``); the
    protected header is exactly ``{"alg":"dir","enc":"A256GCM","kid":…,"typ":"lk-mcp-dispatch+jwt"}``
    in minimal JSON with no other member such as ``zip`` or ``crit`` (``bad_header``); ``kid`` is
    in the keyring (``unknown_kid``); canonical base64url, empty encrypted key, 12-byte IV,
    16-byte tag (``malformed``); decryption (``decrypt_failed``); claims UTF-8 JSON nested at most
    32 deep, of the right types, ``iat``/``exp``/``nbf`` NumericDates up to year 9999 and
    ``iss`` = ``livekit-mcp-dispatch`` (``malformed``, also for an empty plaintext); ``aud`` =
    ``agent_name`` (``wrong_audience``); ``room`` = ``room_name`` (``wrong_room``); ``exp`` at most
    30 s in the past and, when present, ``nbf`` at most 30 s in the future (``expired``).

    ``now`` is a Unix timestamp or an aware datetime (tests); defaults to the current time.

    Raises a :class:`DispatchMetadataError` subclass carrying ``code``, or :class:`KeyringError`
    when the keyring itself is invalid (a configuration error, not the metadata's).
    """
    keys = parse_dispatch_keyring(keyring_json)
    if not isinstance(metadata, str):
        raise MalformedError("Sealed dispatch metadata must be a string.")
    segments = metadata.split(".")
    if len(segments) != 5:
        raise MalformedError("Sealed dispatch metadata is not a compact JWE (five segments).")
    header_segment, encrypted_key, iv, ciphertext, tag = segments

    kid = _check_header(header_segment)
    key = keys.get(kid)
    if key is None:
        raise UnknownKidError("Sealed dispatch metadata names a key id that is not in the keyring.")
    if encrypted_key != "":
        raise MalformedError('Sealed dispatch metadata must have an empty encrypted key (alg "dir").')
    iv_bytes, tag_bytes = _b64decode_canonical(iv), _b64decode_canonical(tag)
    if (
        iv_bytes is None
        or len(iv_bytes) != _IV_BYTES
        or tag_bytes is None
        or len(tag_bytes) != _TAG_BYTES
        or _b64decode_canonical(ciphertext) is None
    ):
        raise MalformedError("Sealed dispatch metadata has an invalid IV, ciphertext or tag encoding.")

    claims = _parse_claims(_decrypt(metadata, key))
    if claims["aud"] != agent_name:
        raise WrongAudienceError("Sealed dispatch metadata is for another agent.")
    if claims["room"] != room_name:
        raise WrongRoomError("Sealed dispatch metadata is for another room.")
    if now is None:
        now_seconds = time.time()
    elif isinstance(now, datetime):
        now_seconds = now.timestamp()
    else:
        now_seconds = float(now)
    # The TypeScript opener's comparison: exactly 30 s past ``exp`` is still good, 30.001 s is not.
    if now_seconds - claims["exp"] > EXP_LEEWAY_SECONDS:
        raise ExpiredError("Sealed dispatch metadata has expired.")
    # Not valid yet is outside the validity window too; the contract has no code of its own for it.
    if "nbf" in claims and claims["nbf"] - now_seconds > EXP_LEEWAY_SECONDS:
        raise ExpiredError("Sealed dispatch metadata is not valid yet.")

    return DispatchGrant(
        user_id=claims["sub"],
        tenant_id=claims["tid"],
        participant_identity=claims["pid"],
        room_name=claims["room"],
        agent_name=claims["aud"],
        mcp_servers=claims["mcp_servers"],
        client=claims.get("client"),
        expires_at=datetime.fromtimestamp(claims["exp"], tz=timezone.utc),
        jti=claims["jti"],
        sid=claims.get("sid"),
        refresh_at=claims.get("refresh_at"),
        refresh_url=claims.get("refresh_url"),
    )
