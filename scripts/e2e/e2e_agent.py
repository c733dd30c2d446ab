"""LLM-free e2e worker: worker/python's opener and toolsets, a tool called as an LLM would.

Per job it does what worker/python/agent.py does before its AgentSession starts, with the same
functions (``open_dispatch_metadata``, ``build_mcp_toolsets``), then, instead of an LLM, calls the
``whoami`` tool through the MCPToolset's own function tool (``prepare_function_arguments`` + the
tool callable: the path an LLM tool call takes). No STT/TTS/LLM, no network beyond loopback.

Each job appends one JSON line to $LKMCP_E2E_REPORT (never a token, header or the metadata):
  {"event":"served","job_id","room","agent_name","user_id","tenant_id","participant_identity",
   "tools":[...],"whoami":{...},"errors":[...]}
  {"event":"refused","job_id","room","agent_name","code"}

The job joins the room, stays while its participant (``pid``) is there, and leaves when that
participant leaves (or after LKMCP_E2E_LINGER seconds if it never shows up), so the room can
finish.

Environment: LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET, DISPATCH_KEYS, LKMCP_AGENT_NAME,
LKMCP_E2E_REPORT, LKMCP_E2E_LINGER (default 3).

    python scripts/e2e/e2e_agent.py start
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "worker" / "python"))

from livekit import rtc  # noqa: E402
from livekit.agents import AgentServer, AutoSubscribe, JobContext, cli  # noqa: E402
from livekit.agents.llm.utils import prepare_function_arguments  # noqa: E402
from livekit_mcp_dispatch import (  # noqa: E402
    DispatchMetadataError,
    KeyringError,
    McpConnectionError,
    UnsafeMcpUrlError,
    build_mcp_toolsets,
    open_dispatch_metadata,
)

logger = logging.getLogger("lkmcp.e2e")

AGENT_NAME = os.environ.get("LKMCP_AGENT_NAME", "mcp-agent")
REPORT = os.environ["LKMCP_E2E_REPORT"]
LINGER = float(os.environ.get("LKMCP_E2E_LINGER", "3"))

# load_fnc: the default load is machine CPU; a busy CI box marks the worker full and LiveKit
# drops the job ("no worker available"). host/port: keep the health server on loopback and off
# the fixed 8081 of `start` mode.
server = AgentServer(num_idle_processes=2, load_fnc=lambda: 0.0, host="127.0.0.1", port=0)


def report(**fields: Any) -> None:
    with open(REPORT, "a", encoding="utf-8") as out:
        out.write(json.dumps({**fields, "at": time.time()}) + "\n")


async def call_tool(toolset: Any, name: str, arguments: str) -> Any:
    """Calls one of the toolset's function tools the way the agent's LLM tool-call path does."""
    tool = next((t for t in toolset.tools if t.info.name == name), None)
    if tool is None:
        return None
    args, kwargs = prepare_function_arguments(fnc=tool, json_arguments=arguments)
    result = await tool(*args, **kwargs)
    text = json.loads(result)["text"] if isinstance(result, str) and result.startswith("{") else str(result)
    try:
        return json.loads(text)
    except ValueError:
        return text


async def wait_for_participant_to_leave(ctx: JobContext, identity: str) -> None:
    gone = asyncio.Event()

    @ctx.room.on("participant_disconnected")
    def _left(p: rtc.RemoteParticipant) -> None:
        if p.identity == identity:
            gone.set()

    if identity not in {p.identity for p in ctx.room.remote_participants.values()}:
        try:
            await asyncio.wait_for(ctx.wait_for_participant(identity=identity), LINGER)
        except asyncio.TimeoutError:
            return
    await gone.wait()


@server.rtc_session(agent_name=AGENT_NAME)
async def entrypoint(ctx: JobContext) -> None:
    job = {"job_id": ctx.job.id, "room": ctx.job.room.name, "agent_name": AGENT_NAME}
    try:
        grant = open_dispatch_metadata(
            ctx.job.metadata or "", os.environ.get("DISPATCH_KEYS", ""), AGENT_NAME, ctx.job.room.name
        )
    except DispatchMetadataError as error:
        logger.error("dispatch metadata refused: %s", error.code)
        report(event="refused", code=error.code, **job)
        ctx.shutdown(reason="dispatch metadata refused")
        return
    except KeyringError:
        report(event="refused", code="bad_keyring", **job)
        ctx.shutdown(reason="bad keyring")
        return

    errors: list[str] = []
    tools: list[str] = []
    whoami: list[Any] = []
    try:
        toolsets = await asyncio.to_thread(build_mcp_toolsets, grant, allow_loopback_for_tests=True)
    except UnsafeMcpUrlError as error:
        toolsets = []
        errors.append(f"unsafe_mcp_url: {error}")
    for toolset in toolsets:
        try:
            await toolset.setup()
            tools.extend(t.info.name for t in toolset.tools)
            answer = await call_tool(toolset, "whoami", "{}")
            if answer is not None:
                whoami.append(answer)
            # Ties this job's token to this job's room on the MCP server's call record.
            await call_tool(toolset, "echo", json.dumps({"text": ctx.job.room.name}))
        except (McpConnectionError, UnsafeMcpUrlError) as error:
            errors.append(str(error))
        finally:
            await toolset.aclose()

    report(
        event="served",
        user_id=grant.user_id,
        tenant_id=grant.tenant_id,
        participant_identity=grant.participant_identity,
        tools=sorted(tools),
        whoami=whoami,
        errors=errors,
        **job,
    )
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
    await wait_for_participant_to_leave(ctx, grant.participant_identity)
    ctx.shutdown(reason="participant left")


if __name__ == "__main__":
    cli.run_app(server)
