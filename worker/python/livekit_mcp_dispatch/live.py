"""Keeps one job's MCP toolsets live across credential renewals (docs/api.md §3, §9).

:class:`JobCredentials` renews the job's sealed metadata once at the start, while the servers
that came with headers connect, and hands out no toolset before that renewal answered 200; on
a 5xx/429/network failure after the retries it uses the sealed credentials until their
``expires_at``. It renews again at ``refresh_at`` and when an MCP server refuses the token (401,
or 403 ``insufficient_scope``: sent as ``rejected``, and the failed tool call is retried once).
Each renewal swaps ``MCPServerHTTP.headers`` in place, closes the servers the new metadata no
longer has (or has at another URL), and on ``session_ended`` closes every toolset and ends the
job through ``on_session_ended`` (the example worker passes ``ctx.shutdown``). Renewals are
single-flight: callers that arrive while one runs wait for it.

Log lines name servers, codes and statuses only, never a token, header or the metadata.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import DispatchMetadataError, McpConnectionError, UnsafeMcpUrlError
from .grants import DispatchGrant, McpServerGrant
from .opener import open_dispatch_metadata
from .renewal import RenewalClient, RenewalError, RenewalRefusedError, SessionEndedError
from .toolsets import build_mcp_toolsets

logger = logging.getLogger("lkmcp.renewal")

#: After a renewal failed (5xx after retries), try again this long later, seconds.
RETRY_LATER_SECONDS = 30.0
#: Two renewals at refresh_at are at least this far apart (a refresh_at already past when it
#: arrives must not loop), seconds.
MIN_RENEWAL_INTERVAL_SECONDS = 5.0


class JobCredentials:
    """One job's grant and MCP toolsets, kept current by renewals. Use :meth:`start` once."""

    def __init__(
        self,
        metadata: str,
        grant: DispatchGrant,
        *,
        keyring_json: str | Mapping[str, Any],
        client: RenewalClient,
        on_session_ended: Callable[[str], Any],
        allow_loopback_for_tests: bool = False,
        resolver: Any = None,
        client_session_timeout_seconds: float = 15,
        clock: Callable[[], float] = time.time,
        retry_later_seconds: float = RETRY_LATER_SECONDS,
        min_renewal_interval_seconds: float = MIN_RENEWAL_INTERVAL_SECONDS,
    ) -> None:
        self.metadata = metadata
        self.grant = grant
        self._keyring = keyring_json
        self._client = client
        self._on_session_ended = on_session_ended
        self._build = dict(
            allow_loopback_for_tests=allow_loopback_for_tests,
            resolver=resolver,
            client_session_timeout_seconds=client_session_timeout_seconds,
        )
        self._clock = clock
        self._retry_later = retry_later_seconds
        self._min_interval = min_renewal_interval_seconds
        #: Toolsets by server name, connected and offered.
        self.toolsets: dict[str, Any] = {}
        self._inflight: asyncio.Future[bool] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._next_renewal: float | None = None
        self.ended = False
        self.renewals = 0
        self._last_attempt = clock()
        self._failed = False
        #: How :meth:`start` spent its time, ms since it began: ``renewal`` (the start renewal
        #: answered), ``sealed_connected`` (the servers sealed with headers connected, in parallel
        #: with it) and ``ready`` (the toolsets to offer). ``renewal_added`` is what the renewal
        #: added to ``ready`` over connecting with the sealed credentials alone.
        self.start_timings: dict[str, int] = {}

    # -- public ------------------------------------------------------------------------------

    async def start(self) -> list[Any] | None:
        """Start renewal + connect; returns the toolsets to offer, or None when the job must end
        (``session_ended``, or the renewal refused: no tool is offered)."""
        if not self.grant.refresh_url or not self.grant.sid:
            # An older server without the renewal claims: nothing to renew with.
            logger.warning("metadata has no refresh_url/sid; using the sealed credentials without renewal")
            await self._connect(self.grant.mcp_servers)
            self._schedule()
            return list(self.toolsets.values())
        began = time.monotonic()

        def since() -> int:
            return round((time.monotonic() - began) * 1000)

        sealed = self.grant.mcp_servers
        renewal = asyncio.ensure_future(self._renew_once((), apply=False))
        renewal.add_done_callback(lambda _: self.start_timings.setdefault("renewal", since()))
        # Connected meanwhile: only servers that came with headers (token mode seals none).
        await self._connect(tuple(s for s in sealed if s.headers and not self._expired(s)))
        self.start_timings["sealed_connected"] = since()
        outcome = await renewal
        if outcome == "ended":
            # Closed again: servers may have connected after the renewal's own close.
            await self._close_all()
            return None
        if outcome == "refused":
            await self._close_all()
            self._end("credentials renewal refused")
            return None
        if outcome == "ok":
            # Applied only now that every sealed connection attempt has finished.
            await self._apply(self.grant)
        if outcome == "unavailable":
            # The sealed credentials until their expires_at; the timer retries and closes them.
            await self._close(lambda name: self._expired(self._server(name)))
        await self._connect(
            tuple(s for s in self.grant.mcp_servers if s.name not in self.toolsets and s.headers and not self._expired(s))
        )
        self._schedule()
        t = self.start_timings
        t["ready"] = since()
        t["renewal_added"] = max(0, t["ready"] - t["sealed_connected"])
        logger.info(
            "job start: renewal %d ms, sealed servers connected %d ms, ready %d ms",
            t.get("renewal", -1),
            t["sealed_connected"],
            t["ready"],
            extra={"start_timings": dict(t)},
        )
        return list(self.toolsets.values())

    async def renew(self, rejected: Sequence[Mapping[str, Any]] = ()) -> bool:
        """Renews now (joining one in flight); True when the job has fresh credentials."""
        if self.ended:
            return False
        # Single-flight: the running renewal's answer serves this caller too; one with a rejection
        # to report runs its own after it (never two at once: nothing awaits between the loop's
        # end and the new renewal taking _inflight).
        joined: bool | None = None
        while self._inflight is not None:
            joined = await asyncio.shield(self._inflight)
        if joined is not None and (not rejected or self.ended):
            return joined
        if self.ended:
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight = future
        try:
            outcome = await self._renew_once(rejected)
            ok = outcome == "ok"
            if outcome == "refused":
                await self._close_all()
                self._end("credentials renewal refused")
            self._schedule()
            future.set_result(ok)
            return ok
        except BaseException:
            if not future.done():
                future.set_result(False)
            raise
        finally:
            if self._inflight is future:
                self._inflight = None

    async def aclose(self) -> None:
        """Stops the timer and closes every toolset (the job's shutdown callback)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._close_all()

    # -- renewal -----------------------------------------------------------------------------

    async def _renew_once(self, rejected: Sequence[Mapping[str, Any]], *, apply: bool = True) -> str:
        """One renewal and its consequences: "ok", "ended", "refused" or "unavailable"."""
        assert self.grant.refresh_url and self.grant.sid
        self._last_attempt = self._clock()
        self._failed = False
        try:
            answer = await self._client.renew(self.metadata, self.grant.refresh_url, self.grant.sid, rejected)
        except SessionEndedError:
            logger.info("session ended: closing the MCP toolsets and ending the job")
            await self._close_all()
            self._end("session ended")
            return "ended"
        except RenewalRefusedError as error:
            logger.error("credentials renewal refused: %s (HTTP %s)", error.code, error.status)
            return "refused"
        except RenewalError as error:
            logger.warning("credentials renewal unavailable: %s (HTTP %s)", error.code, error.status)
            self._failed = True
            return "unavailable"
        try:
            grant = open_dispatch_metadata(
                answer.metadata, self._keyring, self.grant.agent_name, self.grant.room_name, now=self._clock()
            )
        except DispatchMetadataError as error:
            logger.error("renewed metadata refused: %s", error.code)
            return "refused"
        if grant.sid != self.grant.sid or grant.participant_identity != self.grant.participant_identity:
            logger.error("renewed metadata is for another session or participant")
            return "refused"
        for item in answer.unavailable:
            logger.warning("MCP server %s unavailable: %s", item.get("name"), item.get("code"))
        self.metadata, self.grant = answer.metadata, grant
        if apply:
            await self._apply(grant)
        # Counted once applied: whoever sees the count sees the gone servers closed.
        self.renewals += 1
        return "ok"

    async def _apply(self, grant: DispatchGrant) -> None:
        """Swaps headers in place; closes the servers that are gone or moved."""
        servers = {s.name: s for s in grant.mcp_servers}

        def gone(name: str) -> bool:
            new, old = servers.get(name), self.toolsets[name]._lkmcp_server
            return new is None or (new.url, new.transport) != (old.url, old.transport) or not new.headers

        await self._close(gone)
        for name, toolset in self.toolsets.items():
            server = servers.get(name)
            if server is None:
                continue  # connected while the renewal ran; the next _apply closes it
            toolset._lkmcp_server = server
            # MCPServerHTTP.headers is settable: it also updates the live HTTP client's headers.
            toolset._mcp_server.headers = dict(server.headers)

    def _server(self, name: str) -> McpServerGrant:
        return self.toolsets[name]._lkmcp_server

    def _expired(self, server: McpServerGrant) -> bool:
        return server.expires_at is not None and server.expires_at <= self._clock()

    # -- toolsets ----------------------------------------------------------------------------

    async def _connect(self, servers: Sequence[McpServerGrant]) -> None:
        async def one(server: McpServerGrant) -> None:
            try:
                [toolset] = await asyncio.to_thread(
                    build_mcp_toolsets, dataclasses.replace(self.grant, mcp_servers=(server,)), **self._build
                ) or [None]
            except UnsafeMcpUrlError as error:
                logger.error("MCP URL refused: %s", error)
                return
            if toolset is None:
                return
            try:
                await toolset.setup()
            except (McpConnectionError, UnsafeMcpUrlError) as error:
                logger.error("MCP toolset %s unavailable: %s", toolset.id, error)
                await toolset.aclose()
                return
            toolset._lkmcp_server = server
            toolset._mcp_server._lkmcp_on_rejected = lambda rejection, name=server.name: self._rejected(name, rejection)
            self.toolsets[server.name] = toolset
            names = ", ".join(sorted(t.info.name for t in toolset.tools)) or "none"
            logger.info("MCP toolset %s ready, tools: %s", toolset.id, names)

        await asyncio.gather(*(one(s) for s in servers if s.name not in self.toolsets))

    async def _rejected(self, name: str, rejection: Mapping[str, Any]) -> bool:
        """A tool call of ``name`` failed on a refused token: renew; True to retry the call once."""
        logger.info("MCP server %s refused the token (HTTP %s): renewing", name, rejection.get("status"))
        before = self.toolsets.get(name)
        if before is None:
            return False
        refused = dict(before._mcp_server.headers)
        if self._inflight is not None:
            # A renewal already runs: if it brings this server new headers, that is enough.
            await asyncio.shield(self._inflight)
            if self.toolsets.get(name) is not before:
                return False
            if dict(before._mcp_server.headers) != refused:
                return True
        ok = await self.renew([{"name": name, **rejection}])
        return ok and self.toolsets.get(name) is before

    async def _close(self, which: Callable[[str], bool]) -> None:
        doomed = [name for name in list(self.toolsets) if which(name)]
        closing = [self.toolsets.pop(name) for name in doomed]
        for name in doomed:
            logger.info("MCP server %s closed: not in the renewed credentials", name)
        await asyncio.gather(*(t.aclose() for t in closing), return_exceptions=True)

    async def _close_all(self) -> None:
        await self._close(lambda _name: True)

    def _end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        self._on_session_ended(reason)

    # -- timer -------------------------------------------------------------------------------

    def _schedule(self) -> None:
        """Next wake-up: ``refresh_at``, or a retry after a failed renewal; and each ``expires_at``."""
        if self.ended:
            return
        now = self._clock()
        times = [s.expires_at for s in self.grant.mcp_servers if s.expires_at is not None and s.name in self.toolsets]
        refresh = self.grant.refresh_at
        if self.grant.refresh_url and self.grant.sid and refresh is not None:
            if self._failed:
                # The last renewal failed after its retries: try again a little later.
                refresh = max(refresh, now + self._retry_later)
            times.append(max(refresh, self._last_attempt + self._min_interval))
        if not times:
            return
        at = min(times)
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        self._next_renewal = at
        self._timer = asyncio.ensure_future(self._wake(max(0.0, at - now)))

    async def _wake(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timer = None
        await self._close(lambda name: self._expired(self._server(name)))
        refresh = self.grant.refresh_at
        due = refresh is not None and refresh <= self._clock() + 0.5
        if self.grant.refresh_url and self.grant.sid and due:
            await self.renew()
        else:
            self._schedule()
