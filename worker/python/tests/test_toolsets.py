"""build_mcp_toolsets: real livekit-agents MCPToolset objects, the address guard, and a real
MCP server on loopback answering per bearer token."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import pytest
from livekit.agents import mcp

import livekit_mcp_dispatch as lkmd


def _grant(*servers: lkmd.McpServerGrant, user: str = "alice") -> lkmd.DispatchGrant:
    return lkmd.DispatchGrant(
        user_id=user,
        tenant_id="acme",
        participant_identity=user,
        room_name="lk-mcp-acme-room",
        agent_name="mcp-agent",
        mcp_servers=tuple(servers),
        client=None,
        expires_at=datetime.now(tz=timezone.utc),
        jti="jti",
    )


def _server(url: str, token: str, **extra: Any) -> lkmd.McpServerGrant:
    return lkmd.McpServerGrant(
        name=extra.pop("name", "notes"),
        url=url,
        transport=extra.pop("transport", "streamable_http"),
        headers={"Authorization": f"Bearer {token}"},
        **extra,
    )


def _public(_host: str) -> list[str]:
    return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]


class TestBuild:
    def test_builds_real_toolsets_with_per_user_headers_and_explicit_transport(self) -> None:
        # Prepare
        grant = _grant(
            _server("https://mcp.example.com/mcp", "tok-a", allowed_tools=("whoami",)),
            _server("https://legacy.example.com/events", "tok-b", name="legacy", transport="sse"),
        )

        # Act
        toolsets = lkmd.build_mcp_toolsets(grant, resolver=_public)

        # Assess
        assert all(isinstance(t, mcp.MCPToolset) for t in toolsets)
        assert len(toolsets) == 2
        assert [t.id for t in toolsets] == ["mcp_notes", "mcp_legacy"]
        first, second = (t._mcp_server for t in toolsets)
        assert isinstance(first, mcp.MCPServerHTTP)
        assert first.url == "https://mcp.example.com/mcp"
        assert first.headers == {"Authorization": "Bearer tok-a"}
        assert first._use_streamable_http is True
        assert first._allowed_tools == {"whoami"}
        assert second.headers == {"Authorization": "Bearer tok-b"}
        # "/events" would be guessed as SSE anyway; the explicit transport is what counts.
        assert second._use_streamable_http is False
        assert "tok-a" not in repr(first)

    def test_empty_allowed_tools_builds_no_toolset(self) -> None:
        grant = _grant(_server("https://mcp.example.com/mcp", "tok", allowed_tools=()))
        assert lkmd.build_mcp_toolsets(grant, resolver=_public) == []

    @pytest.mark.parametrize(
        ("url", "answers", "message"),
        [
            ("http://mcp.example.com/mcp", ["93.184.215.14"], "scheme http: is not allowed"),
            ("https://user:pw@mcp.example.com/mcp", ["93.184.215.14"], "userinfo"),
            ("https://127.0.0.1/mcp", [], "loopback"),
            ("https://localhost/mcp", ["127.0.0.1", "::1"], "loopback"),
            ("https://mcp.example.com/mcp", ["93.184.215.14", "10.1.2.3"], "private"),
            ("https://mcp.example.com/mcp", ["100.64.0.9"], "cgnat"),
            ("https://mcp.example.com/mcp", ["169.254.169.254"], "metadata"),
            ("https://mcp.example.com/mcp", ["fd00:ec2::254"], "metadata"),
            ("https://mcp.example.com/mcp", ["fd12::1"], "unique-local"),
            ("https://mcp.example.com/mcp", ["::ffff:127.0.0.1"], "ipv4-mapped"),
            ("https://mcp.example.com/mcp", ["ff02::1"], "multicast"),
            ("https://mcp.example.com/mcp", ["0.0.0.0"], "unspecified"),
            ("https://0x7f.1/mcp", [], "loopback"),
            ("https://2130706433/mcp", [], "loopback"),
            ("https://0177.0.0.1/mcp", [], "loopback"),
            ("https://[::ffff:a00:1]/mcp", [], "ipv4-mapped"),
            ("https://mcp.example.com/mcp", [], "does not resolve"),
        ],
    )
    def test_refuses_non_public_hosts(self, url: str, answers: list[str], message: str) -> None:
        grant = _grant(_server(url, "tok-secret"))
        with pytest.raises(lkmd.UnsafeMcpUrlError) as caught:
            lkmd.build_mcp_toolsets(grant, resolver=lambda _h: answers)
        assert message in str(caught.value)
        assert "tok-secret" not in str(caught.value)

    def test_loopback_needs_the_test_only_flag(self) -> None:
        grant = _grant(_server("http://127.0.0.1:9/mcp", "tok"))
        with pytest.raises(lkmd.UnsafeMcpUrlError):
            lkmd.build_mcp_toolsets(grant)
        assert len(lkmd.build_mcp_toolsets(grant, allow_loopback_for_tests=True)) == 1


class TestAddressGuard:
    @pytest.mark.parametrize(
        ("address", "cls"),
        [
            ("8.8.8.8", "public"),
            ("127.0.0.1", "loopback"),
            ("127.1", "loopback"),
            ("2130706433", "loopback"),
            ("0x7f000001", "loopback"),
            ("0x7f.0.0.1", "loopback"),
            ("0177.0.0.01", "loopback"),
            ("017700000001", "loopback"),
            ("10.0.0.1", "private"),
            ("0xa.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "cgnat"),
            ("100.127.255.255", "cgnat"),
            ("169.254.169.254", "metadata"),
            ("169.254.1.1", "link_local"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("[::1]", "loopback"),
            ("::ffff:127.0.0.1", "ipv4_mapped"),
            ("::ffff:8.8.8.8", "ipv4_mapped"),
            ("::ffff:7f00:1", "ipv4_mapped"),
            ("fc00::1", "unique_local"),
            ("fd00:ec2::254", "metadata"),
            ("fe80::1%eth0", "link_local"),
            ("ff02::1", "multicast"),
            ("64:ff9b::8.8.8.8", "public"),
            ("64:ff9b::10.0.0.1", "nat64_non_public"),
            ("2002:0a00:0001::1", "6to4_non_public"),
            ("2001:db8::1", "documentation"),
            ("2606:4700:4700::1111", "public"),
            ("256.1.1.1", "invalid"),
            ("1.2.3.4.5", "invalid"),
            ("example.com", "invalid"),
        ],
    )
    def test_classifies_every_spelling(self, address: str, cls: str) -> None:
        assert lkmd.classify_address(address) == cls


class TestLiveServer:
    """Real MCPToolset.setup() against the TypeScript SDK's MCP server on 127.0.0.1."""

    def _run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    async def _tools_and_call(self, toolset: mcp.MCPToolset, name: str, args: dict[str, Any]) -> tuple[list[str], Any]:
        await toolset.setup()
        try:
            names = sorted(t.info.name for t in toolset.tools)
            tool = next(t for t in toolset.tools if t.info.name == name)
            result = await tool(raw_arguments=args)
            return names, result
        finally:
            await toolset.aclose()

    def test_each_user_sees_only_their_own_data(self, mcp_server: dict[str, Any]) -> None:
        # Prepare
        tokens = mcp_server["tokens"]
        [alice] = lkmd.build_mcp_toolsets(
            _grant(_server(mcp_server["url"], tokens["alice"])), allow_loopback_for_tests=True
        )
        [bob] = lkmd.build_mcp_toolsets(
            _grant(_server(mcp_server["url"], tokens["bob"]), user="bob"), allow_loopback_for_tests=True
        )

        # Act
        names, who_a = self._run(self._tools_and_call(alice, "whoami", {}))
        _, notes_b = self._run(self._tools_and_call(bob, "notes_search", {"query": ""}))

        # Assess
        assert names == ["always_fails", "delete_everything", "notes_search", "whoami"]
        assert "user:alice" in who_a
        assert "bob: fix the roof" in notes_b
        assert "alice" not in notes_b

    def test_allowed_tools_limits_what_is_exposed(self, mcp_server: dict[str, Any]) -> None:
        [toolset] = lkmd.build_mcp_toolsets(
            _grant(_server(mcp_server["url"], mcp_server["tokens"]["bob"], allowed_tools=("whoami",))),
            allow_loopback_for_tests=True,
        )
        names, who = self._run(self._tools_and_call(toolset, "whoami", {}))
        assert names == ["whoami"]
        assert "user:bob" in who

    def test_sse_transport(self, mcp_server: dict[str, Any]) -> None:
        [toolset] = lkmd.build_mcp_toolsets(
            _grant(_server(mcp_server["sseUrl"], mcp_server["tokens"]["alice"], transport="sse")),
            allow_loopback_for_tests=True,
        )
        _, who = self._run(self._tools_and_call(toolset, "whoami", {}))
        assert "user:alice" in who

    def test_mcp_tool_error_reaches_the_llm_as_tool_error(self, mcp_server: dict[str, Any]) -> None:
        from livekit.agents.llm import ToolError

        [toolset] = lkmd.build_mcp_toolsets(
            _grant(_server(mcp_server["url"], mcp_server["tokens"]["alice"])), allow_loopback_for_tests=True
        )
        with pytest.raises(ToolError, match="quota exhausted for this user"):
            self._run(self._tools_and_call(toolset, "always_fails", {}))

    def test_wrong_token_fails_setup(self, mcp_server: dict[str, Any]) -> None:
        [toolset] = lkmd.build_mcp_toolsets(
            _grant(_server(mcp_server["url"], "tok-wrong-secret")), allow_loopback_for_tests=True
        )

        async def go() -> BaseException:
            try:
                await toolset.setup()
            except BaseException as error:  # noqa: BLE001
                return error
            finally:
                await toolset.aclose()
            raise AssertionError("setup succeeded with a wrong token")

        error = self._run(go())
        assert isinstance(error, lkmd.McpConnectionError)
        assert str(error) == (
            'MCP server "notes" answered HTTP 401: it refused the credentials (check the user\'s MCP token)'
        )
        assert error.status == 401
        assert error.__cause__ is None and error.__context__ is None
        assert "tok-wrong-secret" not in repr(error)

    def test_cross_origin_redirect_is_not_followed(self, mcp_server: dict[str, Any]) -> None:
        [toolset] = lkmd.build_mcp_toolsets(
            _grant(_server(mcp_server["redirectUrl"], mcp_server["tokens"]["alice"])),
            allow_loopback_for_tests=True,
        )

        async def go() -> BaseException:
            try:
                await asyncio.wait_for(toolset.setup(), timeout=20)
            except BaseException as error:  # noqa: BLE001
                return error
            finally:
                await toolset.aclose()
            raise AssertionError("setup followed a cross-origin redirect")

        error = self._run(go())
        assert isinstance(error, lkmd.McpConnectionError)
        assert "HTTP 307" in str(error)
        assert "not followed" in str(error)

    def test_address_is_checked_again_on_every_request(self, mcp_server: dict[str, Any]) -> None:
        # Prepare: the name resolves to loopback when built, to a private address when connecting.
        answers = iter([["127.0.0.1"], ["10.0.0.7"], ["10.0.0.7"], ["10.0.0.7"]])
        url = mcp_server["url"].replace("127.0.0.1", "localhost")
        [toolset] = lkmd.build_mcp_toolsets(
            _grant(_server(url, mcp_server["tokens"]["alice"])),
            allow_loopback_for_tests=True,
            resolver=lambda _host: next(answers),
        )

        async def go() -> BaseException:
            try:
                await toolset.setup()
            except BaseException as error:  # noqa: BLE001
                return error
            finally:
                await toolset.aclose()
            raise AssertionError("setup connected to a host that now resolves to a private address")

        # Act
        error = self._run(go())

        # Assess
        assert isinstance(error, lkmd.UnsafeMcpUrlError)
        assert str(error) == "MCP host localhost resolves to a private address"
