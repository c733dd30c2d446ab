"""LiveKit MCP toolsets per grant: ``livekit.agents.mcp.MCPToolset`` objects, each talking to
that user's server with that user's headers, re-checking every request's address and origin.

``livekit.agents`` is imported lazily by :func:`build_mcp_toolsets`, so the opener works without it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .address_guard import Resolver, assert_public_host, assert_public_url
from .errors import McpConnectionError, UnsafeMcpUrlError
from .grants import DispatchGrant

if TYPE_CHECKING:  # pragma: no cover
    from livekit.agents import mcp as lk_mcp


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
        mcp_server._lkmcp_rejected = None
        mcp_server._lkmcp_on_rejected = None
        toolset = toolset_cls(id=_toolset_id(server.name), mcp_server=mcp_server)
        toolset._lkmcp_name = server.name
        toolsets.append(toolset)
    return toolsets


_GUARDED: dict[int, tuple[type, type]] = {}
_SCOPE = re.compile(r'scope="([^"]*)"')


def _rejection(response: Any) -> dict[str, Any] | None:
    """A 401, or a 403 whose ``WWW-Authenticate`` says ``insufficient_scope`` (RFC 6750 §3.1),
    as the renewal's ``rejected`` entry (without the name); else None."""
    status = response.status_code
    challenge = response.headers.get("www-authenticate", "")
    if status == 401:
        return {"status": 401}
    if status == 403 and "insufficient_scope" in challenge:
        found = _SCOPE.search(challenge)
        return {"status": 403, **({"scope": found.group(1)} if found else {})}
    return None


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
        #: The last rejection of the credentials: {"status": 401|403, "scope"?: …}, set by the
        #: response hook on a 401 or a 403 ``insufficient_scope``.
        _lkmcp_rejected: dict[str, Any] | None
        #: Called with that rejection after a tool call failed on it; True: the headers were
        #: renewed, call once more (set by :class:`~livekit_mcp_dispatch.live.JobCredentials`).
        _lkmcp_on_rejected: Any

        async def _call_tool(self, name: str, arguments: dict[str, Any], **kwargs: Any) -> Any:
            self._lkmcp_rejected = None
            result: Any = None
            failure: BaseException | None = None
            try:
                result = await super()._call_tool(name, arguments, **kwargs)
            except Exception as error:  # noqa: BLE001 - re-raised below unless the token was rejected
                failure = error
            rejected, on_rejected = self._lkmcp_rejected, self._lkmcp_on_rejected
            if rejected is None or on_rejected is None:
                if failure is not None:
                    raise failure
                return result
            # The token was refused: renew (single-flight per job) and call once more.
            if not await on_rejected(rejected):
                if failure is not None:
                    raise failure
                return result
            self._lkmcp_rejected = None
            if not self._use_streamable_http or self._client is None:
                # The SSE client's writer ends on a refused POST ("Connection closed"): reconnect,
                # with the renewed headers, before the one retry.
                await self.aclose()
                await self.initialize()
            return await super()._call_tool(name, arguments, **kwargs)

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
                rejected = _rejection(response)
                if rejected is not None:
                    self._lkmcp_rejected = rejected

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
