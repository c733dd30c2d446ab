"""Errors of the worker side, each with the contract's stable ``code`` (docs/api.md §3).

Messages are fixed text: never claims, tokens, header values or the metadata itself.
"""

from __future__ import annotations

from collections.abc import Sequence


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
