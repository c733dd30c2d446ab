"""The address rule (docs/api.md §6), the same as the contract package's classifier, and the
worker's connect-time URL check."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from .errors import UnsafeMcpUrlError


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
