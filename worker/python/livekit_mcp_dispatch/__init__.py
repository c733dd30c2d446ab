"""Worker side of livekit-mcp-dispatch for Python agents (livekit-agents 1.8).

Opens the sealed dispatch metadata of a job (docs/api.md §3: a compact JWE, ``dir`` + ``A256GCM``)
and turns the user's MCP servers into ``livekit.agents.mcp.MCPToolset`` objects, each talking to
that user's server with that user's headers, after checking that the server's host resolves to
public addresses only.

``open_dispatch_metadata`` needs only ``jwcrypto``; ``livekit.agents`` is imported lazily by
``build_mcp_toolsets``, so the opener can be used (and tested) without it.

Nothing here logs or raises with claims, tokens or header values: exceptions carry a fixed
message and the contract's error ``code``; the grant types hide headers from ``repr``.

One job per module: ``wire`` (the format's constants), ``errors``, ``grants``, ``keyring``,
``opener``, ``address_guard`` (the address rule and the URL check), ``toolsets``, ``assertion``
(the worker assertion, docs/api.md §9), ``renewal`` (the ``POST /v1/worker/credentials`` client)
and ``live`` (a job's toolsets kept current across renewals). Import the
public names from the package itself.
"""

from __future__ import annotations

from .assertion import make_worker_assertion, worker_assertion_key
from .address_guard import (
    assert_public_host,
    assert_public_url,
    canonical_ipv4,
    classify_address,
    is_public_address,
)
from .errors import (
    BadHeaderError,
    DecryptFailedError,
    DispatchMetadataError,
    ExpiredError,
    KeyringError,
    MalformedError,
    McpConnectionError,
    UnknownKidError,
    UnsafeMcpUrlError,
    WrongAudienceError,
    WrongRoomError,
)
from .grants import DispatchGrant, McpServerGrant
from .keyring import parse_dispatch_keyring
from .live import JobCredentials
from .renewal import (
    RenewalAnswer,
    RenewalClient,
    RenewalError,
    RenewalPolicy,
    RenewalRefusedError,
    RenewalUnavailableError,
    SessionEndedError,
)
from .opener import open_dispatch_metadata
from .toolsets import build_mcp_toolsets
from .wire import DISPATCH_ALG, DISPATCH_ENC, DISPATCH_ISSUER, DISPATCH_TYP, EXP_LEEWAY_SECONDS

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
    "make_worker_assertion",
    "worker_assertion_key",
    "open_dispatch_metadata",
    "classify_address",
    "is_public_address",
    "canonical_ipv4",
    "assert_public_host",
    "assert_public_url",
    "build_mcp_toolsets",
    "RenewalClient",
    "RenewalPolicy",
    "RenewalAnswer",
    "RenewalError",
    "RenewalRefusedError",
    "RenewalUnavailableError",
    "SessionEndedError",
    "JobCredentials",
]
