"""Worker side of livekit-mcp-dispatch for Python agents (livekit-agents 1.8).

Opens the sealed dispatch metadata of a job (CONTRACT §3: a compact JWE, ``dir`` + ``A256GCM``)
and turns the user's MCP servers into ``livekit.agents.mcp.MCPToolset`` objects, each talking to
that user's server with that user's headers, after checking that the server's host resolves to
public addresses only.

``open_dispatch_metadata`` needs only ``jwcrypto``; ``livekit.agents`` is imported lazily by
``build_mcp_toolsets``, so the opener can be used (and tested) without it.

Nothing here logs or raises with claims, tokens or header values: exceptions carry a fixed
message and the contract's error ``code``; the grant types hide headers from ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import json
import math
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:  # pragma: no cover
    from livekit.agents import mcp as lk_mcp

__all__ = [
    "DISPATCH_ALG",
    "DISPATCH_ENC",
    "DISPATCH_TYP",
    "DISPATCH_ISSUER",
    "EXP_LEEWAY_SECONDS",
    "DispatchGrant",
    "McpServerGrant",
    "KeyringError",
    "DispatchMetadataError",
    "UnknownKidError",
    "BadHeaderError",
    "DecryptFailedError",
    "WrongAudienceError",
    "WrongRoomError",
    "ExpiredError",
    "MalformedError",
    "UnsafeMcpUrlError",
    "McpConnectionError",
    "parse_dispatch_keyring",
    "open_dispatch_metadata",
    "classify_address",
    "is_public_address",
    "canonical_ipv4",
    "assert_public_host",
    "assert_public_url",
    "build_mcp_toolsets",
]

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


# ---------------------------------------------------------------------------------------------
# Errors


class KeyringError(ValueError):
    """The dispatch keyring is invalid. Lists every problem; never contains key material."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("Invalid dispatch keyring:\n" + "\n".join(f"  - {p}" for p in self.problems))


class DispatchMetadataError(Exception):
    """Sealed dispatch metadata was refused. ``code`` is the contract's shared error code.

    The message is fixed text per reason: it never contains claims, tokens, header values or the
    metadata itself, and no underlying exception is chained (``__cause__``/``__context__`` are None).
    """

    code: str = "malformed"

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.args[0]} [{self.code}]"


class UnknownKidError(DispatchMetadataError):
    """The header's ``kid`` is not in the keyring."""

    code = "unknown_kid"


class BadHeaderError(DispatchMetadataError):
    """The protected header is not exactly ``{"alg":"dir","enc":"A256GCM","kid":…,"typ":…}``."""

    code = "bad_header"


class DecryptFailedError(DispatchMetadataError):
    """AES-GCM decryption failed (wrong key, tampered bytes)."""

    code = "decrypt_failed"


class WrongAudienceError(DispatchMetadataError):
    """``aud`` is not this worker's agent name."""

    code = "wrong_audience"


class WrongRoomError(DispatchMetadataError):
    """``room`` is not the job's room."""

    code = "wrong_room"


class ExpiredError(DispatchMetadataError):
    """``exp`` is more than 30 s in the past."""

    code = "expired"


class MalformedError(DispatchMetadataError):
    """Not a compact JWE of the right shape, or claims missing or of the wrong type."""

    code = "malformed"


class McpConnectionError(RuntimeError):
    """An MCP toolset could not be set up: unreachable, credentials refused, protocol failure.

    The message names the server and the HTTP status, never a header value or token; nothing
    is chained onto it.
    """

    code = "mcp_unavailable"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnsafeMcpUrlError(ValueError):
    """An MCP URL the worker will not connect to (not https, userinfo, non-public address).

    The message names the host and the reason, never the URL's path or any header.
    """

    code = "unsafe_mcp_url"


# ---------------------------------------------------------------------------------------------
# Grant types


@dataclasses.dataclass(frozen=True)
class McpServerGrant:
    """One MCP server of the grant. ``headers`` are secret and hidden from ``repr``."""

    name: str
    url: str
    transport: Literal["streamable_http", "sse"]
    headers: Mapping[str, str] = dataclasses.field(repr=False)
    allowed_tools: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class DispatchGrant:
    """What a job may do, opened from its dispatch metadata."""

    user_id: str
    tenant_id: str
    #: The only participant this job serves.
    participant_identity: str
    room_name: str
    agent_name: str
    mcp_servers: tuple[McpServerGrant, ...] = dataclasses.field(repr=False)
    #: The app's own agent metadata string, if it sent one (not secret).
    client: str | None
    expires_at: datetime
    jti: str


# ---------------------------------------------------------------------------------------------
# Opening


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


def parse_dispatch_keyring(keyring: str | Mapping[str, Any]) -> dict[str, bytes]:
    """Parses keyring JSON (``{"current","keys":{kid: base64url 32 bytes}}``) to ``{kid: key}``.

    Raises :class:`KeyringError` listing every problem.
    """
    value: Any = keyring
    if isinstance(keyring, (str, bytes)):
        try:
            value = json.loads(keyring)
        except ValueError:
            raise KeyringError(["not valid JSON"]) from None
    if not isinstance(value, Mapping):
        raise KeyringError(['must be an object {"current","keys"}'])
    problems: list[str] = []
    current, keys = value.get("current"), value.get("keys")
    if not isinstance(current, str) or not _KID.match(current):
        problems.append('"current" must be a key id of 1-64 characters [A-Za-z0-9._-]')
    if not isinstance(keys, Mapping) or not keys:
        problems.append('"keys" must be a non-empty object of key id to base64url key')
        raise KeyringError(problems)
    parsed: dict[str, bytes] = {}
    for kid, encoded in keys.items():
        if not isinstance(kid, str) or not _KID.match(kid):
            problems.append(f'key id "{str(kid)[:64]}" is not 1-64 characters [A-Za-z0-9._-]')
            continue
        data = _b64decode_canonical(encoded) if isinstance(encoded, str) and encoded else None
        if data is None:
            problems.append(f'key "{kid}" is not base64url')
            continue
        if len(data) != _KEY_BYTES:
            problems.append(f'key "{kid}" must be {_KEY_BYTES} bytes, got {len(data)}')
            continue
        parsed[kid] = data
    if isinstance(current, str) and _KID.match(current) and current not in keys:
        problems.append(f'"current" key "{current}" is not in "keys"')
    if problems:
        raise KeyringError(problems)
    return parsed


def _check_header(segment: str) -> str:
    """Returns the header's kid, or raises BadHeaderError."""
    data = _b64decode_canonical(segment)
    header: Any = None
    text = ""
    if data is not None:
        try:
            text = data.decode("utf-8")
            header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError):
            header = None
    if not isinstance(header, dict) or set(header) != set(_HEADER_KEYS):
        raise BadHeaderError("Sealed dispatch metadata has an unexpected protected header.")
    if (
        header["alg"] != DISPATCH_ALG
        or header["enc"] != DISPATCH_ENC
        or header["typ"] != DISPATCH_TYP
        or not isinstance(header["kid"], str)
        or header["kid"] == ""
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
    try:
        opened = jwe.JWE(algs=[DISPATCH_ALG, DISPATCH_ENC])
        opened.deserialize(token, key=jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(key).rstrip(b"=").decode()))
        plaintext = opened.payload
    except Exception:  # noqa: BLE001 - any jwcrypto failure is a decryption failure
        failed = True
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
    return McpServerGrant(
        name=name,
        url=url,
        transport=transport,
        headers=dict(headers),
        allowed_tools=tuple(allowed) if isinstance(allowed, list) else None,
    )


def _parse_claims(plaintext: bytes) -> dict[str, Any]:
    try:
        value = json.loads(plaintext.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        value = _INVALID
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
        v = value.get(name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise _malformed(name)
    if "client" in value and not isinstance(value["client"], str):
        raise _malformed("client")
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
    """Opens sealed dispatch metadata (CONTRACT §3) and returns the job's grant.

    Checks, in the TypeScript opener's order: five compact segments (``malformed``); the
    protected header is exactly ``{"alg":"dir","enc":"A256GCM","kid":…,"typ":"lk-mcp-dispatch+jwt"}``
    in minimal JSON with no other member such as ``zip`` or ``crit`` (``bad_header``); ``kid`` is
    in the keyring (``unknown_kid``); canonical base64url, empty encrypted key, 12-byte IV,
    16-byte tag (``malformed``); decryption (``decrypt_failed``); claims of the right types with
    ``iss`` = ``livekit-mcp-dispatch`` (``malformed``); ``aud`` = ``agent_name``
    (``wrong_audience``); ``room`` = ``room_name`` (``wrong_room``); ``exp`` at most 30 s in the
    past (``expired``).

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
    # Same rule as the TypeScript opener, which compares with one extra second of slack.
    if now_seconds - claims["exp"] > EXP_LEEWAY_SECONDS + 1:
        raise ExpiredError("Sealed dispatch metadata has expired.")

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
    )


# ---------------------------------------------------------------------------------------------
# Address guard: the same rules as functions/core/url-guard.ts and worker/src/address-guard.ts


_V4_RULES: tuple[tuple[str, str], ...] = (
    ("169.254.169.254/32", "metadata"),
    ("169.254.170.2/32", "metadata"),
    ("100.100.100.200/32", "metadata"),
    ("255.255.255.255/32", "broadcast"),
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "this_network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "cgnat"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link_local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)
_V4_TABLE = tuple((ipaddress.IPv4Network(net), cls) for net, cls in _V4_RULES)


def _classify_v4(address: ipaddress.IPv4Address) -> str:
    for network, cls in _V4_TABLE:
        if address in network:
            return cls
    return "public"


def _classify_v6(address: ipaddress.IPv6Address) -> str:
    value = int(address)
    g = [(value >> (16 * (7 - i))) & 0xFFFF for i in range(8)]

    def zero_up_to(n: int) -> bool:
        return all(x == 0 for x in g[:n])

    def v4(hi: int, lo: int) -> ipaddress.IPv4Address:
        return ipaddress.IPv4Address((hi << 16) + lo)

    if zero_up_to(8):
        return "unspecified"
    if zero_up_to(7) and g[7] == 1:
        return "loopback"
    if zero_up_to(5) and g[5] == 0xFFFF:
        return "ipv4_mapped"
    if zero_up_to(4) and g[4] == 0xFFFF and g[5] == 0:
        return "ipv4_mapped"
    if zero_up_to(6):
        return "ipv4_compatible"
    if g[0] == 0x64 and g[1] == 0xFF9B:
        if g[2] == 1:
            return "nat64_local"
        if g[2] == 0 and g[3] == 0 and g[4] == 0 and g[5] == 0:
            return "public" if _classify_v4(v4(g[6], g[7])) == "public" else "nat64_non_public"
        return "reserved"
    if g == [0xFD00, 0x0EC2, 0, 0, 0, 0, 0, 0x254]:
        return "metadata"
    if (g[0] & 0xFE00) == 0xFC00:
        return "unique_local"
    if (g[0] & 0xFFC0) == 0xFE80:
        return "link_local"
    if (g[0] & 0xFFC0) == 0xFEC0:
        return "unique_local"
    if (g[0] & 0xFF00) == 0xFF00:
        return "multicast"
    if (g[0] & 0xE000) != 0x2000:
        return "reserved"
    if g[0] == 0x2001 and g[1] == 0:
        return "teredo"
    if g[0] == 0x2001 and g[1] == 0x0DB8:
        return "documentation"
    if g[0] == 0x2001 and g[1] == 2 and g[2] == 0:
        return "benchmarking"
    if g[0] == 0x2001 and g[1] < 0x0200:
        return "reserved"
    if g[0] == 0x2002:
        return "public" if _classify_v4(v4(g[1], g[2])) == "public" else "6to4_non_public"
    if g[0] == 0x3FFF and (g[1] & 0xF000) == 0:
        return "documentation"
    if g[0] == 0x5F00:
        return "reserved"
    return "public"


def canonical_ipv4(text: str) -> str | None:
    """An IPv4 address in any ``inet_aton`` spelling (``127.1``, ``2130706433``, ``0x7f.0.0.1``,
    ``0177.0.0.1``) as a dotted quad, or None when ``text`` is not one."""
    parts = text.split(".")
    if len(parts) > 4:
        return None
    values: list[int] = []
    for part in parts:
        if re.fullmatch(r"0[xX][0-9a-fA-F]*", part):
            values.append(int(part[2:] or "0", 16))
        elif re.fullmatch(r"0[0-7]*", part):
            values.append(int(part, 8))
        elif re.fullmatch(r"[1-9][0-9]*", part):
            values.append(int(part))
        else:
            return None
    last = values.pop()
    if any(v > 255 for v in values) or last >= 256 ** (4 - len(values)):
        return None
    total = last + sum(v << (8 * (3 - i)) for i, v in enumerate(values))
    return str(ipaddress.IPv4Address(total))


def classify_address(address: str) -> str:
    """Classifies an IP literal (any IPv4 spelling, IPv6 with brackets or zone id) like the
    server's guard: ``public``, ``loopback``, ``private``, ``cgnat``, ``link_local``,
    ``metadata``, ``unique_local``, ``multicast``, ``ipv4_mapped``, … or ``invalid``."""
    text = address.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text and "%" in text:
        text = text.split("%", 1)[0]
    v4 = canonical_ipv4(text)
    if v4 is not None:
        return _classify_v4(ipaddress.IPv4Address(v4))
    try:
        return _classify_v6(ipaddress.IPv6Address(text))
    except ValueError:
        return "invalid"


def is_public_address(address: str) -> bool:
    """True when the address is a public unicast address an MCP server may have."""
    return classify_address(address) == "public"


Resolver = Callable[[str], Sequence[str]]


def _system_resolver(host: str) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]


def _allowed(cls: str, allow_loopback_for_tests: bool) -> bool:
    return cls == "public" or (allow_loopback_for_tests and cls == "loopback")


def assert_public_host(
    host: str, *, allow_loopback_for_tests: bool = False, resolver: Resolver | None = None
) -> list[str]:
    """Resolves ``host`` and raises :class:`UnsafeMcpUrlError` unless every address is public
    (or loopback, with the test-only flag). Returns the addresses checked."""
    name = host.lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    name = name.removesuffix(".")
    if not name:
        raise UnsafeMcpUrlError("MCP URL has no host")
    literal = classify_address(name)
    if literal != "invalid":
        if not _allowed(literal, allow_loopback_for_tests):
            raise UnsafeMcpUrlError(f"MCP host {name} is a {literal.replace('_', '-')} address")
        return [name]
    failed = False
    answers: Sequence[str] = ()
    try:
        answers = list((resolver or _system_resolver)(name))
    except Exception:  # noqa: BLE001 - any resolver failure means "does not resolve"
        failed = True
    if failed or not answers:
        raise UnsafeMcpUrlError(f"MCP host {name} does not resolve")
    for answer in answers:
        cls = classify_address(str(answer))
        if not _allowed(cls, allow_loopback_for_tests):
            raise UnsafeMcpUrlError(f"MCP host {name} resolves to a {cls.replace('_', '-')} address")
    return list(answers)


def assert_public_url(
    url: str, *, allow_loopback_for_tests: bool = False, resolver: Resolver | None = None
) -> None:
    """``https`` (also ``http`` with the test-only flag), no userinfo, and a host whose every
    address passes :func:`assert_public_host`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise UnsafeMcpUrlError("MCP URL is not an absolute URL") from None
    schemes = ("https", "http") if allow_loopback_for_tests else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeMcpUrlError(f"MCP URL scheme {parts.scheme or '(none)'}: is not allowed (https only)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeMcpUrlError("MCP URL must not carry userinfo")
    if not host:
        raise UnsafeMcpUrlError("MCP URL has no host")
    assert_public_host(host, allow_loopback_for_tests=allow_loopback_for_tests, resolver=resolver)


# ---------------------------------------------------------------------------------------------
# LiveKit MCP toolsets


def _toolset_id(name: str) -> str:
    return "mcp_" + (re.sub(r"[^A-Za-z0-9_-]", "_", name)[:48] or "server")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


def build_mcp_toolsets(
    grant: DispatchGrant,
    *,
    allow_loopback_for_tests: bool = False,
    resolver: Resolver | None = None,
    client_session_timeout_seconds: float = 15,
) -> list[lk_mcp.MCPToolset]:
    """One ``mcp.MCPToolset`` per MCP server of the grant, for ``AgentSession(tools=...)``.

    Each wraps an ``mcp.MCPServerHTTP`` with the server's URL, its per-user ``headers``, an
    explicit ``transport_type`` and ``allowed_tools``. The URL is checked first (https, no
    userinfo, every resolved address public) and again on every HTTP request the MCP client
    makes, which also refuses requests to another origin; the MCP SDK itself follows only
    same-origin redirects. A server whose ``allowed_tools`` is an empty list is skipped (no tool
    may be used; ``MCPServerHTTP`` would read an empty list as "all tools").

    This resolves host names synchronously; from async code call it through
    ``asyncio.to_thread``. Raises :class:`UnsafeMcpUrlError` for a refused URL.
    """
    from livekit.agents import mcp  # lazy: the opener works without livekit-agents

    guarded_cls, toolset_cls = _guarded_classes(mcp)
    toolsets = []
    for server in grant.mcp_servers:
        if server.allowed_tools is not None and len(server.allowed_tools) == 0:
            continue
        assert_public_url(server.url, allow_loopback_for_tests=allow_loopback_for_tests, resolver=resolver)
        mcp_server = guarded_cls(
            url=server.url,
            transport_type=server.transport,
            allowed_tools=list(server.allowed_tools) if server.allowed_tools is not None else None,
            headers=dict(server.headers),
            client_session_timeout_seconds=client_session_timeout_seconds,
        )
        mcp_server._lkmcp_guard = (_origin(server.url), allow_loopback_for_tests, resolver)
        mcp_server._lkmcp_status = None
        toolset = toolset_cls(id=_toolset_id(server.name), mcp_server=mcp_server)
        toolset._lkmcp_name = server.name
        toolsets.append(toolset)
    return toolsets


_GUARDED: dict[int, tuple[type, type]] = {}


def _leaf_exceptions(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaf_exceptions(inner)]
    return [error]


def _connection_error(name: str, status: int | None, error: BaseException) -> Exception:
    unsafe = next((e for e in _leaf_exceptions(error) if isinstance(e, UnsafeMcpUrlError)), None)
    if unsafe is not None:
        return UnsafeMcpUrlError(str(unsafe))
    if status in (401, 403):
        return McpConnectionError(
            f'MCP server "{name}" answered HTTP {status}: it refused the credentials '
            "(check the user's MCP token)",
            status,
        )
    if status is not None and 300 <= status < 400:
        return McpConnectionError(
            f'MCP server "{name}" answered HTTP {status}: a redirect to another origin is not followed',
            status,
        )
    if status is not None:
        return McpConnectionError(f'MCP server "{name}" answered HTTP {status}', status)
    kinds = sorted({type(e).__name__ for e in _leaf_exceptions(error)})
    return McpConnectionError(f'MCP server "{name}" is unreachable ({", ".join(kinds)})')


def _guarded_classes(mcp: Any) -> tuple[type, type]:
    """``MCPServerHTTP`` whose HTTP client re-checks each request (same origin, public host) and
    records the last HTTP error status; ``MCPToolset`` whose ``setup`` turns failures into
    :class:`McpConnectionError` / :class:`UnsafeMcpUrlError` without secrets."""
    cached = _GUARDED.get(id(mcp))
    if cached is not None:
        return cached

    class GuardedMCPServerHTTP(mcp.MCPServerHTTP):  # type: ignore[name-defined,misc]
        _lkmcp_guard: tuple[tuple[str, str, int | None], bool, Resolver | None]
        _lkmcp_status: int | None

        def __repr__(self) -> str:
            # URL and transport only, never the headers.
            return f"GuardedMCPServerHTTP(url={self.url})"

        def _create_http_client(self, *args: Any, **kwargs: Any) -> Any:
            client = super()._create_http_client(*args, **kwargs)
            origin, allow_loopback, resolver = self._lkmcp_guard

            async def check_request(request: Any) -> None:
                import asyncio

                if _origin(str(request.url)) != origin:
                    raise UnsafeMcpUrlError("MCP client refused a request to another origin")
                await asyncio.to_thread(
                    assert_public_host,
                    request.url.host,
                    allow_loopback_for_tests=allow_loopback,
                    resolver=resolver,
                )

            async def record_status(response: Any) -> None:
                if response.status_code >= 300:
                    self._lkmcp_status = response.status_code

            client.event_hooks["request"].append(check_request)
            client.event_hooks["response"].append(record_status)
            return client

    class GuardedMCPToolset(mcp.MCPToolset):  # type: ignore[name-defined,misc]
        _lkmcp_name: str

        async def setup(self, *, reload: bool = False) -> Any:
            failure: Exception | None = None
            try:
                return await super().setup(reload=reload)
            except Exception as error:  # noqa: BLE001 - mapped to a secret-free error below
                failure = _connection_error(self._lkmcp_name, self._mcp_server._lkmcp_status, error)
            # Raised outside the except block so the original exception (which may quote a
            # response body) is not chained onto it.
            raise failure

    _GUARDED[id(mcp)] = (GuardedMCPServerHTTP, GuardedMCPToolset)
    return _GUARDED[id(mcp)]
