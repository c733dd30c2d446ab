"""build_mcp_toolsets inside a real livekit-agents AgentSession (text only, scripted LLM): the
runtime sets the toolset up, the LLM's tool call reaches the user's MCP server, errors come back
as tool errors, and only allowed_tools exist."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from livekit.agents import Agent, AgentSession, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

import livekit_mcp_dispatch as lkmd


class ScriptedLLM(llm.LLM):
    """Answers a user message found in ``script`` with those tool calls; after tool output, with 'done'."""

    def __init__(self, script: dict[str, list[tuple[str, str]]]) -> None:
        super().__init__()
        self.script = script

    def chat(self, *, chat_ctx: llm.ChatContext, tools: list[Any] | None = None, conn_options: Any = DEFAULT_API_CONNECT_OPTIONS, **_: Any) -> llm.LLMStream:
        return ScriptedStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class ScriptedStream(llm.LLMStream):
    async def _run(self) -> None:
        last = self._chat_ctx.items[-1]
        calls = self._llm.script.get(last.text_content or "", []) if last.type == "message" else []
        if calls:
            self._event_ch.send_nowait(
                llm.ChatChunk(
                    id="scripted",
                    delta=llm.ChoiceDelta(
                        role="assistant",
                        tool_calls=[
                            llm.FunctionToolCall(name=name, arguments=args, call_id=f"call_{i}")
                            for i, (name, args) in enumerate(calls)
                        ],
                    ),
                )
            )
        else:
            self._event_ch.send_nowait(
                llm.ChatChunk(id="scripted", delta=llm.ChoiceDelta(role="assistant", content="done"))
            )


def _outputs(result: Any) -> list[tuple[str, bool]]:
    return [(e.item.output, e.item.is_error) for e in result.events if e.type == "function_call_output"]


def test_toolset_runs_inside_agent_session(mcp_server: dict[str, Any]) -> None:
    # Prepare
    grant = lkmd.DispatchGrant(
        user_id="alice",
        tenant_id="acme",
        participant_identity="alice",
        room_name="r",
        agent_name="mcp-agent",
        mcp_servers=(
            lkmd.McpServerGrant(
                "notes",
                mcp_server["url"],
                "streamable_http",
                {"Authorization": f"Bearer {mcp_server['tokens']['alice']}"},
                ("whoami", "notes_search", "always_fails"),
            ),
        ),
        client=None,
        expires_at=datetime.now(tz=timezone.utc),
        jti="j",
    )
    toolsets = lkmd.build_mcp_toolsets(grant, allow_loopback_for_tests=True)
    script = {
        "who am i": [("whoami", "{}")],
        "my notes": [("notes_search", '{"query": "milk"}')],
        "break": [("always_fails", "{}")],
        "forbidden": [("delete_everything", "{}")],
    }

    async def go() -> dict[str, list[tuple[str, bool]]]:
        outputs = {}
        async with AgentSession(llm=ScriptedLLM(script), tools=toolsets) as session:
            await session.start(Agent(instructions="test agent"))
            for text in script:
                outputs[text] = _outputs(await session.run(user_input=text))
        return outputs

    # Act
    outputs = asyncio.run(asyncio.wait_for(go(), timeout=60))

    # Assess
    [(who, who_error)] = outputs["who am i"]
    assert "user:alice" in who and not who_error
    [(notes, _)] = outputs["my notes"]
    assert "alice: buy milk" in notes and "call bob" not in notes
    assert outputs["break"] == [("quota exhausted for this user", True)]
    [(missing, missing_error)] = outputs["forbidden"]
    assert missing_error and "delete_everything" in missing
