"""The example entrypoint's job handling: metadata opened before anything else, refusals logged
with the code only, toolsets connected per user."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest

import agent
import livekit_mcp_dispatch as lkmd


class FakeCtx:
    def __init__(self, metadata: str, room: str) -> None:
        self.job = SimpleNamespace(id="AJ_test", metadata=metadata, room=SimpleNamespace(name=room))
        self.shutdowns: list[str] = []
        self.connected = False

    def shutdown(self, reason: str = "") -> None:
        self.shutdowns.append(reason)

    async def connect(self) -> None:  # pragma: no cover - must never be reached here
        self.connected = True


def _vector(vectors: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in vectors["vectors"] if v["name"] == name)


class TestEntrypoint:
    def test_loopback_mcp_urls_are_refused_without_the_dev_switch(
        self, mcp_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        monkeypatch.delenv("ALLOW_INSECURE_MCP_URLS", raising=False)
        grant = lkmd.DispatchGrant(
            user_id="bob",
            tenant_id="acme",
            participant_identity="bob",
            room_name="r",
            agent_name="mcp-agent",
            mcp_servers=(lkmd.McpServerGrant("notes", mcp_server["url"], "streamable_http", {"Authorization": "Bearer x"}),),
            client=None,
            expires_at=datetime.now(),
            jti="j",
        )
        with caplog.at_level(logging.INFO, logger="lkmcp.agent"):
            assert asyncio.run(agent.setup_toolsets(grant)) == []
        assert "MCP URL refused: MCP URL scheme http: is not allowed (https only)" in caplog.text

    @pytest.mark.parametrize("name", ["wrong_agent", "flipped_tag_byte", "zip_header", "unknown_kid"])
    def test_refused_metadata_ends_the_job_with_one_log_line_and_no_claims(
        self, vectors: dict[str, Any], name: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Prepare
        vector = _vector(vectors, name)
        ctx = FakeCtx(vector["metadata"], vector.get("room_name", vectors["room_name"]))
        monkeypatch.setenv("DISPATCH_KEYS", json.dumps(vectors["keyring"]))
        monkeypatch.setattr(agent, "AGENT_NAME", vectors["agent_name"])
        if "agent_name" in vector:
            monkeypatch.setattr(agent, "AGENT_NAME", vector["agent_name"])

        # Act
        with caplog.at_level(logging.INFO, logger="lkmcp.agent"):
            asyncio.run(agent.entrypoint(ctx))  # type: ignore[arg-type]

        # Assess
        assert ctx.shutdowns == ["dispatch metadata refused"]
        assert ctx.connected is False
        [record] = caplog.records
        assert record.getMessage() == (
            f"dispatch metadata refused: {vector['expect']['code']}; ending job AJ_test without serving anyone"
        )
        assert "alice" not in caplog.text and "tok-" not in caplog.text

    def test_invalid_keyring_is_logged_without_key_material(
        self, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ctx = FakeCtx("x.y.z.w.v", "room")
        monkeypatch.setenv("DISPATCH_KEYS", '{"current":"k1","keys":{"k1":"c2VjcmV0LWtleS1tYXRlcmlhbA"}}')
        with caplog.at_level(logging.INFO, logger="lkmcp.agent"):
            asyncio.run(agent.entrypoint(ctx))  # type: ignore[arg-type]
        assert ctx.shutdowns == ["dispatch metadata refused"]
        assert "DISPATCH_KEYS is not a valid keyring" in caplog.text
        assert "c2VjcmV0LWtleS1tYXRlcmlhbA" not in caplog.text

    def test_valid_metadata_opens_before_the_session(self, vectors: dict[str, Any]) -> None:
        vector = _vector(vectors, "valid")
        ctx = FakeCtx(vector["metadata"], vectors["room_name"])
        grant = agent.open_job(ctx, json.dumps(vectors["keyring"]), vectors["agent_name"])  # type: ignore[arg-type]
        assert grant is not None
        assert grant.participant_identity == "alice"

    def test_setup_toolsets_connects_the_users_server_and_drops_a_failing_one(
        self, mcp_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Prepare: loopback MCP URLs only through the dev switch.
        monkeypatch.setenv("ALLOW_INSECURE_MCP_URLS", "true")
        grant = lkmd.DispatchGrant(
            user_id="bob",
            tenant_id="acme",
            participant_identity="bob",
            room_name="r",
            agent_name="mcp-agent",
            mcp_servers=(
                lkmd.McpServerGrant("notes", mcp_server["url"], "streamable_http", {"Authorization": f"Bearer {mcp_server['tokens']['bob']}"}),
                lkmd.McpServerGrant("broken", mcp_server["url"], "streamable_http", {"Authorization": "Bearer nope-secret"}),
            ),
            client=None,
            expires_at=datetime.now(),
            jti="j",
        )

        async def go() -> list[str]:
            toolsets = await agent.setup_toolsets(grant)
            try:
                return [t.id for t in toolsets]
            finally:
                for t in toolsets:
                    await t.aclose()

        # Act
        with caplog.at_level(logging.INFO, logger="lkmcp.agent"):
            ids = asyncio.run(go())

        # Assess
        assert ids == ["mcp_notes"]
        [ready] = [r.getMessage() for r in caplog.records if "ready, tools:" in r.getMessage()]
        assert ready.startswith("MCP toolset mcp_notes ready, tools: ") and "whoami" in ready
        assert 'MCP toolset mcp_broken unavailable: MCP server "broken" answered HTTP 401' in caplog.text
        assert "nope-secret" not in caplog.text


class TestServerOptions:
    def test_unset_means_the_library_defaults(self) -> None:
        assert agent.server_options({}) == {}

    def test_ignore_reports_no_load_and_the_health_server_goes_where_asked(self) -> None:
        # Prepare
        env = {
            "LKMCP_WORKER_LOAD": "ignore",
            "LKMCP_HEALTH_HOST": "127.0.0.1",
            "LKMCP_HEALTH_PORT": "0",
            "LKMCP_IDLE_PROCESSES": "2",
        }

        # Act
        options = agent.server_options(env)

        # Assess
        assert options["load_fnc"]() == 0.0
        assert (options["host"], options["port"], options["num_idle_processes"]) == ("127.0.0.1", 0, 2)

    def test_cpu_keeps_the_default_load(self) -> None:
        assert "load_fnc" not in agent.server_options({"LKMCP_WORKER_LOAD": "cpu"})

    def test_every_bad_value_is_named_at_once(self) -> None:
        with pytest.raises(ValueError) as caught:
            agent.server_options({"LKMCP_WORKER_LOAD": "none", "LKMCP_HEALTH_PORT": "80a", "LKMCP_IDLE_PROCESSES": "-1"})
        message = str(caught.value)
        assert 'LKMCP_WORKER_LOAD must be "cpu" or "ignore"' in message
        assert "LKMCP_HEALTH_PORT must be a whole number from 0 to 65535" in message
        assert "LKMCP_IDLE_PROCESSES must be a whole number from 0 to 64" in message


class TestPrepareJobRenews:
    """prepare_job against the stand-in endpoint (tests/standin.py) and the real MCP server."""

    class Ctx(FakeCtx):
        def __init__(self, metadata: str, room: str) -> None:
            super().__init__(metadata, room)
            self.callbacks: list[Any] = []

        def add_shutdown_callback(self, callback: Any) -> None:
            self.callbacks.append(callback)

    def _run(self, monkeypatch: pytest.MonkeyPatch, stand_in: Any, metadata: str) -> tuple[Any, Any]:
        monkeypatch.setenv("DISPATCH_KEYS", json.dumps(stand_in.keyring))
        monkeypatch.setenv("ALLOW_INSECURE_MCP_URLS", "true")
        monkeypatch.setattr(agent, "AGENT_NAME", stand_in.agent)
        ctx = self.Ctx(metadata, stand_in.room)

        async def go() -> Any:
            prepared = await agent.prepare_job(ctx)  # type: ignore[arg-type]
            tools = sorted(t.info.name for ts in (prepared[1] if prepared else []) for t in ts.tools)
            for callback in ctx.callbacks:
                await callback()
            return prepared, tools

        return ctx, asyncio.run(go())

    def test_the_renewed_tokens_serve_the_job(self, monkeypatch: pytest.MonkeyPatch, mcp_server: dict[str, Any]) -> None:
        from standin import StandIn

        stand_in = StandIn({"current": "k1", "keys": {"k1": "A" * 43}}, "mcp-agent", "room-1")
        try:
            token = mcp_server["tokens"]["alice"]
            server = {"name": "notes", "url": mcp_server["url"], "transport": "streamable_http"}
            stand_in.servers = [{**server, "headers": {"Authorization": f"Bearer {token}"}}]
            # Token mode: the sealed server has no headers; the start renewal supplies them.
            ctx, (prepared, tools) = self._run(monkeypatch, stand_in, stand_in.metadata(servers=[{**server, "headers": {}}]))
        finally:
            stand_in.close()
        assert prepared is not None and "whoami" in tools
        assert prepared[0].sid == stand_in.sid and len(stand_in.requests) == 1
        assert ctx.shutdowns == []

    def test_session_ended_ends_the_job_without_tools(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from standin import StandIn

        stand_in = StandIn({"current": "k1", "keys": {"k1": "A" * 43}}, "mcp-agent", "room-1")
        stand_in.script = [(403, "session_ended", {})]
        try:
            ctx, (prepared, tools) = self._run(monkeypatch, stand_in, stand_in.metadata(servers=[]))
        finally:
            stand_in.close()
        assert prepared is None and tools == []
        assert ctx.shutdowns == ["session ended"]
